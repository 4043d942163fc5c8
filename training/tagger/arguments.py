"""``genre-train ensemble``: its flags and the command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from training.fitting import DEVICES
from training.published import print_published
from training.tagger.config import EnsembleRunConfig
from training.tagger.wheel import DEFAULT_WHEEL, WheelError


def add_ensemble_parser(commands: Any) -> None:
    ensemble = commands.add_parser(
        "ensemble", help="fuse a CNN-LSTM with a head on the pretrained musicnn tagger"
    )
    ensemble.add_argument("--data", type=Path, required=True, help="<label>/<file> audio folder")
    ensemble.add_argument(
        "--cnn-lstm", type=Path, required=True, help="the CNN-LSTM version to ship (train+valid)"
    )
    ensemble.add_argument(
        "--cnn-lstm-selection",
        type=Path,
        required=True,
        help="the same command's train-only CNN-LSTM (genre-train audio --no-refit)",
    )
    ensemble.add_argument("--out", type=Path, default=Path("models"), help="model repository")
    ensemble.add_argument("--name", default="gtzan-cnn-lstm")
    ensemble.add_argument("--wheel", type=Path, default=DEFAULT_WHEEL, help="musicnn 0.1.0 wheel")
    ensemble.add_argument("--splits", type=Path, help="split-list directory")
    ensemble.add_argument("--seed", type=int, default=0, help="seed of the nested halves")
    ensemble.add_argument("--device", choices=DEVICES, default="auto")
    ensemble.add_argument("--no-progress", action="store_true")


def run_ensemble_command(arguments: argparse.Namespace) -> int:
    from training.tagger.pipeline import run_ensemble  # torch and sklearn: after parsing

    config = EnsembleRunConfig(
        data=arguments.data,
        cnn_lstm=arguments.cnn_lstm,
        cnn_lstm_selection=arguments.cnn_lstm_selection,
        out=arguments.out,
        name=arguments.name,
        wheel=arguments.wheel,
        splits_dir=arguments.splits,
        seed=arguments.seed,
        device=arguments.device,
    )
    try:
        outcome = run_ensemble(config, progress=not arguments.no_progress)
    except (WheelError, ValueError) as error:
        print(f"genre-train: {error}", file=sys.stderr)
        return 1
    shown = ("nested_track_accuracy", "track_accuracy", "cnn_lstm_track_accuracy",
             "tagger_head_track_accuracy", "nested_track_log_loss")  # fmt: skip
    print_published(outcome.directory, outcome.manifest.metrics, shown)
    return 0
