"""How a version with a music detector abstains on sound no choice was made with: the test voices
(``VOICES['test']``), fresh noise and silence, and mixtures the detector never saw (speech over
quiet music, music after five seconds of silence, speech then music).

    python -m training.abstention.study --version models/gtzan-cnn-lstm/4 --data ../shared/data

Every figure runs the served rules (``modelcore.abstention``) over each clip's windows at the
served hop; music comes from the valid list (the base's members saw it in training, but the
detector and the threshold did not choose on these mixtures).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from modelcore.abstention import Policy
from modelcore.checkpoint import load_checkpoint
from training.abstention.descriptors import EnsembleWindows
from training.abstention.detector import music_probabilities
from training.abstention.evaluation import judge, rates
from training.abstention.sounds import (
    SAMPLE_RATE,
    VOICES,
    at_level,
    coloured_noise,
    silence_clip,
    speech_clip,
)
from training.audio.data import load_audio_dataset
from training.splits import read_split_lists, split_by_lists

FloatArray = npt.NDArray[np.float32]
SECONDS = 12.0


def mixtures(
    music: Sequence[FloatArray], rng: np.random.Generator
) -> dict[str, tuple[list[FloatArray], str]]:
    """Named sets of clips, each with the answer a caller wants: "abstain" or "answer"."""
    voices = VOICES["test"]
    speech = [speech_clip(voices[i % len(voices)], SECONDS, rng).samples for i in range(24)]
    length = round(SECONDS * SAMPLE_RATE)
    songs = [track[:length] for track in music]
    under = {
        f"speech over music {gap} dB quieter": (
            [
                at_level(speech[i % 24], -20) + at_level(song, -20 - gap)
                for i, song in enumerate(songs[:24])
            ],
            "abstain",
        )
        for gap in (10, 20)
    }
    return {
        "speech (test voices)": (speech, "abstain"),
        "white noise": (
            [at_level(coloured_noise("white", SECONDS, rng), rng.uniform(-40, -8)) for _ in speech],
            "abstain",
        ),
        "brown noise": (
            [at_level(coloured_noise("brown", SECONDS, rng), rng.uniform(-40, -8)) for _ in speech],
            "abstain",
        ),
        "silence": ([silence_clip(SECONDS, rng).samples for _ in range(12)], "abstain"),
        **under,
        "music after 5 s of silence": (
            [np.concatenate([np.zeros(5 * SAMPLE_RATE, np.float32), song]) for song in songs],
            "answer",
        ),
        "speech, then music": (
            [
                np.concatenate([speech[i % 24][: 4 * SAMPLE_RATE], song])
                for i, song in enumerate(songs)
            ],
            "answer",
        ),
    }


def run(version: Path, data: Path, seed: int) -> dict[str, Any]:
    checkpoint = load_checkpoint(version)
    windows = EnsembleWindows(checkpoint, torch.device("cpu"))
    if windows.model.detector is None:
        raise ValueError(f"{version}: no music detector")
    manifest = checkpoint.manifest
    dataset = load_audio_dataset(data, SAMPLE_RATE, manifest.labels, progress=True)
    lists = read_split_lists(data / "gtzan" / "splits")
    if lists is None:
        raise ValueError(f"{data}: no split lists")
    valid = split_by_lists(dataset.track_ids, lists).valid
    music = [dataset.waveforms[t] for t in valid]
    policy = Policy(manifest.min_probability, -60.0, manifest.music_threshold)
    hop = windows.contract.default_hop_seconds
    results = {}
    for name, (clips, wanted) in mixtures(music, np.random.default_rng(seed)).items():
        table = windows.table(clips, hop, desc=name)
        music_probability = music_probabilities(windows.model.detector, table.descriptors)
        judged = judge(table.probabilities, music_probability, table.levels, table.clip, policy)
        track, window = rates(judged.tracks), rates(judged.windows)
        results[name] = {
            "wanted": wanted,
            "clips": len(clips),
            "windows": len(table.clip),
            "track": track,
            "window": window,
        }
    return {"version": str(version), "policy": policy.__dict__, "seed": seed, "sets": results}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Abstention on sound nothing was chosen with ({result['version']})",
        "",
        f"Policy: {result['policy']}. Clips of {SECONDS:g} s (mixtures longer), windows at the "
        "served hop; `python -m training.abstention.study`.",
        "",
        "| set | wanted | clips | clips answered as wanted | windows abstained |",
        "|---|---|---|---|---|",
    ]
    for name, entry in result["sets"].items():
        refused = entry["track"]["refused"]
        as_wanted = refused if entry["wanted"] == "abstain" else 1 - refused
        lines.append(
            f"| {name} | {entry['wanted']} | {entry['clips']} | {100 * as_wanted:.1f}% | "
            f"{100 * entry['window']['refused']:.1f}% |"
        )
    return "\n".join([*lines, ""])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, help="directory for study.json and study.md")
    arguments = parser.parse_args(argv)
    result = run(arguments.version, arguments.data, arguments.seed)
    if arguments.out:
        arguments.out.mkdir(parents=True, exist_ok=True)
        (arguments.out / "abstention_study.json").write_text(json.dumps(result, indent=2) + "\n")
        (arguments.out / "abstention_study.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
