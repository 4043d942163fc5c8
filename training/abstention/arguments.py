"""``genre-train abstention``: its flags and the command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from training.fitting import DEVICES
from training.published import print_published

DEFAULT_CACHE = Path(".cache") / "abstention"


def add_abstention_parser(commands: Any) -> None:
    command = commands.add_parser(
        "abstention",
        help="add a music detector and a default min_probability to an audio-ensemble version",
    )
    command.add_argument("--data", type=Path, required=True, help="data directory (GTZAN audio)")
    command.add_argument("--base", type=Path, required=True, help="the audio-ensemble version")
    command.add_argument(
        "--cnn-lstm-selection",
        type=Path,
        required=True,
        help="the train-only CNN-LSTM of the base's member (genre-train audio --no-refit)",
    )
    command.add_argument("--out", type=Path, default=Path("models"), help="model repository")
    command.add_argument("--splits", type=Path, help="split-list directory (default: data's)")
    command.add_argument("--seed", type=int, default=0, help="seed of the made non-music")
    command.add_argument("--device", choices=DEVICES, default="auto")
    command.add_argument(
        "--lossy-copies", type=int, default=2, help="codec copies of each training clip (2)"
    )
    command.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"window tables kept between runs (default {DEFAULT_CACHE}; git ignores it)",
    )
    command.add_argument("--no-cache", action="store_true", help="keep no window tables")
    command.add_argument("--no-progress", action="store_true")


def run_abstention_command(arguments: argparse.Namespace) -> int:
    from training.abstention.config import AbstentionRunConfig
    from training.abstention.pipeline import run_abstention  # torch and sklearn: after parsing
    from training.abstention.voices import VOICES, missing_synthesizers

    missing = missing_synthesizers(tuple(v for voices in VOICES.values() for v in voices))
    if missing:
        print(f"genre-train: {' and '.join(missing)} needed to make speech "
              f"(apt install {' '.join(missing)})", file=sys.stderr)  # fmt: skip
        return 1
    data: Path = arguments.data
    splits = arguments.splits or next(
        (p for p in (data / "gtzan" / "splits", data / "splits") if p.is_dir()), data / "splits"
    )
    try:
        config = AbstentionRunConfig(
            data=data,
            base=arguments.base,
            cnn_lstm_selection=arguments.cnn_lstm_selection,
            out=arguments.out,
            splits_dir=splits,
            seed=arguments.seed,
            device=arguments.device,
            lossy_copies=arguments.lossy_copies,
            cache=None if arguments.no_cache else arguments.cache,
        )
        outcome = run_abstention(config, progress=not arguments.no_progress)
    except ValueError as error:
        print(f"genre-train: {error}", file=sys.stderr)
        return 1
    shown = tuple(key for key in outcome.manifest.metrics if key.startswith("abstention_"))
    print_published(outcome.directory, outcome.manifest.metrics, shown)
    return 0
