"""How a version with a music detector abstains on sound no choice was made with, clean and after
each codec's round trip: the test voices (``VOICES['test']``, flite's female ``slt`` among them),
fresh noise and silence, and mixtures the detector never saw (speech over quiet music, music
after five seconds of silence, speech then music).

    python -m training.abstention.study --version models/gtzan-cnn-lstm/5 --data ../shared/data

Every figure runs the served rules (``modelcore.abstention``) over each clip's windows at the
served hop; music comes from the valid list (the base's members saw it in training, but the
detector and the threshold did not choose on these mixtures). Uncoded, every window at the
served hop and mixtures with every valid track; in each codec, every other window (hop 3 s) and
mixtures with every third track (the round trips and the ensemble cost about a second per 12-s
clip on one CPU thread).
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
from training.abstention.arguments import DEFAULT_CACHE
from training.abstention.codecs import STUDY_CODECS, Codec
from training.abstention.descriptors import EnsembleWindows
from training.abstention.detector import music_probabilities
from training.abstention.evaluation import judge, rates
from training.abstention.sounds import at_level, coloured_noise, silence_clip, speech_clip
from training.abstention.study_report import markdown, study_png
from training.abstention.variants import CLEAN, coded_table, variants
from training.abstention.voices import SAMPLE_RATE, VOICES
from training.audio.data import load_audio_dataset
from training.splits import read_split_lists, split_by_lists

FloatArray = npt.NDArray[np.float32]
SECONDS = 12.0
CLIPS_PER_VOICE = 4
CODED_MUSIC_EVERY = 3
NOISE_CLIPS = 12  # of white and of brown noise: the valid set holds more of every colour
MIXED_CLIPS = 12  # of speech over music, at each gap
CODED_HOP_SECONDS = 3.0  # every other window of the served hop, in each codec


def mixtures(
    music: Sequence[FloatArray],
    rng: np.random.Generator,
    per_voice: int = CLIPS_PER_VOICE,
    seconds: float = SECONDS,
    noise_clips: int = NOISE_CLIPS,
) -> dict[str, tuple[list[FloatArray], str]]:
    """Named sets of clips, each with the answer a caller wants: "abstain" or "answer"."""
    voices = VOICES["test"]
    count = per_voice * len(voices)
    speech = [speech_clip(voices[i % len(voices)], seconds, rng).samples for i in range(count)]
    length = round(seconds * SAMPLE_RATE)
    songs = [track[:length] for track in music]
    under = {
        f"speech over music {gap} dB quieter": (
            [
                at_level(speech[i % count], -20) + at_level(song, -20 - gap)
                for i, song in enumerate(songs[:MIXED_CLIPS])
            ],
            "abstain",
        )
        for gap in (10, 20)
    }
    return {
        "speech (test voices)": (speech, "abstain"),
        "white noise": (
            [
                at_level(coloured_noise("white", seconds, rng), rng.uniform(-40, -8))
                for _ in range(noise_clips)
            ],
            "abstain",
        ),
        "brown noise": (
            [
                at_level(coloured_noise("brown", seconds, rng), rng.uniform(-40, -8))
                for _ in range(noise_clips)
            ],
            "abstain",
        ),
        "silence": ([silence_clip(seconds, rng).samples for _ in range(6)], "abstain"),
        **under,
        "music after 5 s of silence": (
            [np.concatenate([np.zeros(5 * SAMPLE_RATE, np.float32), song]) for song in songs],
            "answer",
        ),
        "speech, then music": (
            [
                np.concatenate([speech[i % count][: 4 * SAMPLE_RATE], song])
                for i, song in enumerate(songs)
            ],
            "answer",
        ),
    }


def run(
    version: Path,
    data: Path,
    seed: int,
    cache: Path | None = None,
    codecs: Sequence[Codec] = STUDY_CODECS,
    per_voice: int = CLIPS_PER_VOICE,
    seconds: float = SECONDS,
    noise_clips: int = NOISE_CLIPS,
) -> dict[str, Any]:
    """The study's figures (``codecs``, the clip counts and ``seconds`` smaller in tests)."""
    checkpoint = load_checkpoint(version)
    windows = EnsembleWindows(checkpoint, torch.device("cpu"), cache)
    detector = windows.model.detector
    if detector is None:
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
    results: dict[str, Any] = {}
    sets = mixtures(music, np.random.default_rng(seed), per_voice, seconds, noise_clips)
    for name, (clips, wanted) in sets.items():
        entry: dict[str, Any] = {"wanted": wanted, "clips": len(clips), "codecs": {}}
        for label, codec in variants(codecs):
            chosen = clips
            if codec is not None and len(clips) == len(music):  # a mixture with every track
                chosen = clips[::CODED_MUSIC_EVERY]
            at = hop if codec is None else CODED_HOP_SECONDS
            table, _ = coded_table(
                windows, chosen, [codec] * len(chosen), at, True, f"{name}, {label}"
            )
            music_probability = music_probabilities(detector, table.descriptors)
            judged = judge(table.probabilities, music_probability, table.levels, table.clip, policy)
            entry["codecs"][label] = {
                "clips": len(chosen),
                "windows": len(table.clip),
                "track": rates(judged.tracks),
                "window": rates(judged.windows),
            }
        entry.update(entry["codecs"][CLEAN])  # the uncoded figures, as earlier versions kept them
        entry["clips"] = len(clips)
        results[name] = entry
    return {
        "version": str(version),
        "policy": policy.__dict__,
        "seed": seed,
        "codecs": [codec.label for codec in codecs],
        "sets": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, help="directory for the study's .json, .md and .png")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="window tables")
    arguments = parser.parse_args(argv)
    result = run(arguments.version, arguments.data, arguments.seed, arguments.cache)
    if arguments.out:
        arguments.out.mkdir(parents=True, exist_ok=True)
        (arguments.out / "abstention_study.json").write_text(json.dumps(result, indent=2) + "\n")
        (arguments.out / "abstention_study.md").write_text(markdown(result))
        (arguments.out / "abstention_study.png").write_bytes(study_png(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
