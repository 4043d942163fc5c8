"""``genre-train audio``: the arguments of the audio subcommand and its run.

    genre-train audio --data ../shared/data/gtzan/audio --out models/

``--data``: a folder of ``<label>/<file>`` audio (wav, flac, ogg, mp3), or one holding
``gtzan/audio`` or ``audio``. Split lists are read from ``<data>/../splits`` (or ``--splits``);
without them tracks are split by a grouped shuffle.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.audio.config import (
    CLASS_WEIGHTINGS,
    AudioModelConfig,
    AudioRunConfig,
    AudioTrainConfig,
    AugmentConfig,
)
from training.fitting import DEVICES
from training.published import print_published


def add_audio_parser(commands: Any) -> None:
    """Adds ``audio`` to the ``genre-train`` subcommands."""
    audio = commands.add_parser("audio", help="train the CNN-LSTM on a folder of labelled audio")
    audio.add_argument("--data", type=Path, required=True, help="<label>/<file> audio folder")
    audio.add_argument("--out", type=Path, default=Path("models"), help="model repository")
    audio.add_argument("--name", default="gtzan-cnn-lstm", help="model name")
    audio.add_argument("--seed", type=int, default=0)
    audio.add_argument("--epochs", type=int, help="maximum epochs (schedule length)")
    audio.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    audio.add_argument("--crops-per-track", type=int, help="random windows per track per epoch")
    audio.add_argument("--batch-size", type=int)
    audio.add_argument("--lr", type=float, help="peak learning rate")
    audio.add_argument("--weight-decay", type=float)
    audio.add_argument("--class-weights", choices=CLASS_WEIGHTINGS, help="loss weights per class")
    audio.add_argument("--device", choices=DEVICES, default="auto")
    audio.add_argument("--window-seconds", type=float, default=3.0)
    audio.add_argument("--overlap", type=float, default=0.5, help="evaluation window overlap")
    audio.add_argument("--sample-rate", type=int, default=22050)
    audio.add_argument("--n-mels", type=int, default=96)
    audio.add_argument("--conv-channels", type=_sizes, help="conv widths, e.g. 16,32,64")
    audio.add_argument("--lstm-hidden", type=int)
    audio.add_argument("--head-hidden", type=int)
    audio.add_argument("--dropout", type=float)
    audio.add_argument("--gain-db", type=float, help="random gain range (+/- dB)")
    audio.add_argument("--mix-probability", type=float, help="share of crops mixed in class")
    audio.add_argument("--no-augment", action="store_true", help="random crops only")
    audio.add_argument("--splits", type=Path, help="split-list directory")
    audio.add_argument("--no-refit", action="store_true", help="ship the train-only model")
    audio.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected widths like 16,32,64, got {text!r}") from error
    if not sizes:
        raise argparse.ArgumentTypeError("give at least one width")
    return sizes


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def audio_config_from_arguments(arguments: argparse.Namespace) -> AudioRunConfig:
    model = replace(
        AudioModelConfig(),
        **_given(
            {
                "conv_channels": arguments.conv_channels,
                "lstm_hidden": arguments.lstm_hidden,
                "head_hidden": arguments.head_hidden,
                "dropout": arguments.dropout,
            }
        ),
    )
    train = replace(
        AudioTrainConfig(seed=arguments.seed, device=arguments.device),
        **_given(
            {
                "epochs": arguments.epochs,
                "patience": arguments.patience,
                "crops_per_track": arguments.crops_per_track,
                "batch_size": arguments.batch_size,
                "learning_rate": arguments.lr,
                "weight_decay": arguments.weight_decay,
                "class_weighting": arguments.class_weights,
            }
        ),
    )
    augment = replace(
        AugmentConfig(),
        **_given({"gain_db": arguments.gain_db, "mix_probability": arguments.mix_probability}),
    )
    if arguments.no_augment:
        augment = AugmentConfig(0.0, 0, 0, 0, 0, 0.0, 0.0)
    return AudioRunConfig(
        data=arguments.data,
        out=arguments.out,
        name=arguments.name,
        window_seconds=arguments.window_seconds,
        overlap=arguments.overlap,
        sample_rate=arguments.sample_rate,
        n_mels=arguments.n_mels,
        model=model,
        train=train,
        augment=augment,
        splits_dir=arguments.splits,
        refit=not arguments.no_refit,
    )


def run_audio_command(arguments: argparse.Namespace) -> int:
    try:
        config = audio_config_from_arguments(arguments)
    except ValueError as error:
        print(f"genre-train: {error}", file=sys.stderr)
        return 2
    from training.audio.pipeline import run_audio  # heavy (torch, matplotlib): after parsing

    try:
        outcome = run_audio(config, progress=not arguments.no_progress)
    except ValueError as error:
        print(f"genre-train: {error}", file=sys.stderr)
        return 1
    print_published(outcome.directory, outcome.manifest.metrics)
    return 0
