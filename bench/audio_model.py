"""The audio model for the streaming cells, and its own offline speed without gRPC.

When the repository has no ``gtzan-cnn-lstm`` yet, ``write_stand_in`` writes an untrained one
with the real front-end (``FrontEndConfig()``: 22.05 kHz, 3 s windows, 1 s hop) and the default
``CNNLSTMClassifier`` sizes into a scratch repository: speed depends on shapes, not on weights.
The tests' tiny audio models come from the same writer with smaller sizes.
``offline_windows_per_second`` times ``AudioRunner.run`` (front-ends, model, softmax) at fixed
batch sizes with the server's thread count, the reference the streams are compared against.
``describe`` says which model that was (version, architecture, inputs, members) from its manifest,
so a report names what was measured instead of assuming it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelcore.checkpoint import load_checkpoint, write_checkpoint
from modelcore.frontend import FrontEndConfig
from modelcore.models import build_model

AUDIO_MODEL = "gtzan-cnn-lstm"
# The shipped audio model's labels, so a stand-in answers in the same shape; written out rather
# than imported from the training data loaders, which would pull pandas into every benchmark.
STAND_IN_LABELS = (
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
)


def find_audio_model(repository: Path) -> Path | None:
    """The highest version directory of ``gtzan-cnn-lstm`` in ``repository``, if any."""
    versions = [p for p in (repository / AUDIO_MODEL).glob("*") if p.name.isdigit()]
    complete = [p for p in versions if (p / "manifest.json").exists()]
    return max(complete, key=lambda p: int(p.name)) if complete else None


def write_stand_in(
    repository: Path,
    frontend: FrontEndConfig | None = None,
    *,
    name: str = AUDIO_MODEL,
    labels: Sequence[str] = STAND_IN_LABELS,
    sizes: Mapping[str, object] | None = None,
    seed: int = 0,
    protocol: str = "untrained benchmark stand-in",
) -> Path:
    """An untrained CNN-LSTM as a real checkpoint: the shipped shape by default (``frontend``'s
    mels, ``CNNLSTMClassifier``'s default sizes), or ``sizes`` for a smaller one (tests)."""
    frontend = frontend or FrontEndConfig()
    torch.manual_seed(seed)
    architecture = {
        "type": "cnn_lstm",
        "params": {"n_mels": frontend.n_mels, "num_classes": len(labels), **(sizes or {})},
    }
    model = build_model(architecture)
    manifest = {
        "name": name,
        "kind": "audio",
        "architecture": architecture,
        "labels": list(labels),
        "frontend": frontend.to_dict(),
        "calibration": {"temperature": 1.0},
        "metrics": {"split_protocol": protocol, "track_accuracy": 0.0},
        "training": {"dataset": "none", "seed": seed},
    }
    return write_checkpoint(repository, manifest, model.state_dict())


def describe(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What the benchmarked audio model is, from its manifest: the facts a report prints."""
    architecture = manifest.get("architecture") or {}
    frontend = manifest.get("frontend") or {}
    inputs = architecture.get("inputs") or [frontend]
    params = architecture.get("params") or {}
    members = list((manifest.get("members") or {}).keys())
    kind = str(architecture.get("type", "?"))
    described_inputs = [
        f"{spec.get('type', '?')} at {spec.get('sample_rate', '?')} Hz" for spec in inputs
    ]
    text = f"`{kind}`"
    if members:
        text += f" of {', '.join(members)}"
    text += (
        f"; inputs {', '.join(described_inputs)}; {frontend.get('window_seconds', '?')} s windows,"
        f" hop {frontend.get('default_hop_seconds', '?')} s"
    )
    if "tagger_chunk" in params:
        text += f"; tagger run {params['tagger_chunk']} windows at a time on a CPU"
    return {
        "version": manifest.get("version"),
        "architecture": kind,
        "members": members,
        "inputs": described_inputs,
        "window_seconds": frontend.get("window_seconds"),
        "hop_seconds": frontend.get("default_hop_seconds"),
        "description": text,
    }


def offline_windows_per_second(
    version_directory: Path,
    batch_sizes: list[int],
    seconds: float,
    threads: int = 0,
    device: torch.device | None = None,
    precision: str = "auto",
    cuda_graphs: str = "auto",
) -> dict[int, float]:
    """Windows per second of the runner alone at each batch size: the best of a few interleaved
    rounds (noise from other processes only ever slows a round down). ``device`` defaults to
    the CPU; on CUDA every timed call ends with the probabilities back on the host, as served,
    in the precision and with the CUDA graphs the server would choose (``precision``,
    ``cuda_graphs``: ``GENRE_AUDIO_PRECISION``, ``GENRE_CUDA_GRAPHS``)."""
    from server.app import configure_torch
    from server.runner import AudioRunner

    configure_torch(threads)  # the server's own thread choice
    runner = AudioRunner(
        load_checkpoint(version_directory), device or torch.device("cpu"), precision, cuda_graphs
    )
    runner.warm_up(max(batch_sizes))  # captures the graphs, where they are used
    samples = runner.frontend_config.window_samples
    rng = np.random.default_rng(0)
    inputs = {
        size: (rng.standard_normal((size, samples)) * 0.1).astype(np.float32)
        for size in batch_sizes
    }
    best = dict.fromkeys(batch_sizes, float("inf"))
    rounds = 4
    for _ in range(rounds):  # sizes interleaved, so a burst of noise does not hit one size only
        for size in batch_sizes:
            runner.run(inputs[size])
            runs, started = 0, time.perf_counter()
            while runs < 2 or time.perf_counter() - started < seconds / rounds:
                runner.run(inputs[size])
                runs += 1
            best[size] = min(best[size], (time.perf_counter() - started) / runs)
    rates = {size: size / best[size] for size in batch_sizes}
    return rates
