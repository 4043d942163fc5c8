"""The abstention check on a GPU: the detector gives the CPU's answers on CUDA, and its cost.

Made windows (noise of two colours, a chord, near-silence) go through ``AudioRunner`` on the CPU
and on CUDA; genre and music probabilities must agree within 1e-3. Then the base version and the
version with the detector are timed on CUDA at one batch size (wall time per window, results back
on the host, best of interleaved rounds), since on a GPU the budget is device time, not CPU.

    python -m bench.studies.abstention_gpu --base models/gtzan-cnn-lstm/3 \
        --with-detector models/gtzan-cnn-lstm/4 --out bench/results/abstention-gpu-h200
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelcore.checkpoint import load_checkpoint
from server.runner import AudioRunner, split_outputs

TOLERANCE = 1e-3


def made_windows(samples: int, rate: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(samples) / rate
    white = 0.1 * rng.standard_normal(samples)
    brown = np.cumsum(rng.standard_normal(samples))
    brown = 0.1 * (brown - brown.mean()) / brown.std()
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))
    floor = 1e-4 * rng.standard_normal(samples)
    return {
        name: np.asarray(window, dtype=np.float32)
        for name, window in {
            "white noise": white,
            "brown noise": brown,
            "C major chord": chord,
            "near-silence": floor,
        }.items()
    }


def seconds_per_window(runner: AudioRunner, batch: np.ndarray, rounds: int) -> float:
    runner.run(batch)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(5):
            runner.run(batch)
        best = min(best, (time.perf_counter() - started) / 5)
    return best / len(batch)


def measure(base: Path, detector: Path, batch_size: int, rounds: int) -> dict[str, Any]:
    cuda = torch.device("cuda")
    exact = ("float32", "off")  # precision and CUDA graphs, as this study was measured
    on_cpu = AudioRunner(load_checkpoint(detector), torch.device("cpu"), *exact)
    on_gpu = AudioRunner(load_checkpoint(detector), cuda, *exact)
    frontend = on_cpu.frontend_config
    windows = made_windows(frontend.window_samples, frontend.sample_rate)
    stacked = np.stack(list(windows.values()))
    cpu_probabilities, cpu_music = split_outputs(on_cpu.run(stacked))
    gpu_probabilities, gpu_music = split_outputs(on_gpu.run(stacked))
    genre_difference = float(np.abs(cpu_probabilities - gpu_probabilities).max())
    music_difference = float(np.abs(cpu_music - gpu_music).max())
    agreement = {
        "genre_max_difference": genre_difference,
        "music_max_difference": music_difference,
        "music_probability": dict(zip(windows, gpu_music.round(4).tolist(), strict=True)),
    }
    base_gpu = AudioRunner(load_checkpoint(base), cuda, *exact)
    rng = np.random.default_rng(1)
    batch = (0.1 * rng.standard_normal((batch_size, frontend.window_samples))).astype(np.float32)
    timings = {"base": float("inf"), "with_detector": float("inf")}
    for _ in range(rounds):
        for name, runner in (("base", base_gpu), ("with_detector", on_gpu)):
            timings[name] = min(timings[name], seconds_per_window(runner, batch, 3))
    return {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "base": str(base),
        "with_detector": str(detector),
        "agreement": agreement,
        "agrees": max(genre_difference, music_difference) <= TOLERANCE,
        "batch": batch_size,
        "ms_per_window": {name: 1000 * value for name, value in timings.items()},
        "extra_share": timings["with_detector"] / timings["base"] - 1,
    }


def markdown(result: dict[str, Any]) -> str:
    agreement = result["agreement"]
    return "\n".join(
        [
            f"# The abstention check on {result['device']} (torch {result['torch']})",
            "",
            f"CPU against CUDA, {result['with_detector']}: genre probabilities differ by at most "
            f"{agreement['genre_max_difference']:.2e}, music probabilities by "
            f"{agreement['music_max_difference']:.2e} (tolerance {TOLERANCE:g}: "
            f"{'agree' if result['agrees'] else 'DISAGREE'}). Music probability on CUDA: "
            + ", ".join(f"{k} {v:.3f}" for k, v in agreement["music_probability"].items())
            + ".",
            "",
            f"| version | ms per window on CUDA (batch {result['batch']}, results on the host) |",
            "|---|---|",
            f"| {result['base']} | {result['ms_per_window']['base']:.3f} |",
            f"| {result['with_detector']} | {result['ms_per_window']['with_detector']:.3f} |",
            "",
            f"Extra: {100 * result['extra_share']:+.1f}%.",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--with-detector", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args(argv)
    result = measure(
        arguments.base, arguments.with_detector, arguments.batch_size, arguments.rounds
    )
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "abstention_gpu.json").write_text(json.dumps(result, indent=2) + "\n")
    (arguments.out / "abstention_gpu.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if result["agrees"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
