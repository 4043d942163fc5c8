"""``genre-train``: train a model and publish it as a new version in the model repository.

    genre-train features --dataset gtzan30 --data ../shared/data --out models/

``--data``: for ``gtzan30``/``gtzan3`` the feature CSV or a directory holding it (directly or
under ``gtzan/``; the split lists are read from ``splits/`` beside the CSV unless ``--splits``
says otherwise); for ``spotify11`` ``train.csv`` or a directory holding it (directly or under
``spotify_11class/``); for ``spotify-tracks`` the ``dataset.csv`` file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from training.abstention.arguments import add_abstention_parser, run_abstention_command
from training.audio.arguments import add_audio_parser, run_audio_command
from training.features.config import (
    SCHEDULES,
    STOPPING_METRICS,
    TREE_DEFAULTS,
    RunConfig,
    TitleConfig,
    TreeConfig,
    defaults_for,
)
from training.features.datasets import DATASETS
from training.features.tabular import CONFLICT_POLICIES, DataFormatError
from training.fitting import DEVICES
from training.published import print_published
from training.tagger.arguments import add_ensemble_parser, run_ensemble_command

DEFAULT_NAMES = {
    "gtzan30": "gtzan-features-mlp",
    "gtzan3": "gtzan3-features-mlp",
    "spotify11": "spotify11-mlp",
    "spotify-tracks": "spotify-tracks-mlp",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genre-train", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    features = commands.add_parser("features", help="train an MLP on a track-feature table")
    features.add_argument("--dataset", choices=DATASETS, required=True)
    features.add_argument("--data", type=Path, required=True, help="CSV file or data directory")
    features.add_argument("--out", type=Path, default=Path("models"), help="model repository")
    features.add_argument("--name", help="model name (default: per dataset)")
    features.add_argument("--seed", type=int, help="seed for splits, initialisation, batches")
    features.add_argument("--epochs", type=int, help="maximum epochs (schedule length)")
    features.add_argument("--hidden", type=_sizes, help="hidden widths, e.g. 256,128")
    features.add_argument("--dropout", type=float)
    features.add_argument("--batch-size", type=int)
    features.add_argument("--lr", type=float, help="peak learning rate")
    features.add_argument("--weight-decay", type=float)
    features.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    features.add_argument("--schedule", choices=SCHEDULES)
    features.add_argument("--label-smoothing", type=float)
    features.add_argument("--members", type=int, help="MLPs averaged in an ensemble (1: one MLP)")
    features.add_argument("--stop-on", choices=STOPPING_METRICS, help="early-stopping metric")
    features.add_argument("--input-noise", type=float, help="Gaussian noise on standardised inputs")
    features.add_argument(
        "--bootstrap",
        action=argparse.BooleanOptionalAction,
        help="each ensemble member trains on a bootstrap sample of the rows",
    )
    features.add_argument(
        "--trees",
        action=argparse.BooleanOptionalAction,
        help="blend the MLPs with gradient-boosted trees (default: on for spotify11)",
    )
    features.add_argument("--tree-weight", type=float, help="the trees' share of the blend")
    features.add_argument(
        "--titles",
        action="store_true",
        help="stack a title member (character n-grams of the track title) onto the model; the "
        "served version then takes an optional title (spotify11)",
    )
    features.add_argument(
        "--title-max-length",
        type=int,
        help="longest title the version takes, in characters (default 200)",
    )
    features.add_argument(
        "--class-weights", choices=("balanced", "none"), help="loss weights for imbalance"
    )
    features.add_argument("--device", choices=DEVICES, default="auto")
    features.add_argument("--drop-bad-rows", action="store_true", help="drop and count bad rows")
    features.add_argument("--genres", nargs="+", help="spotify-tracks genre subset, in order")
    features.add_argument(
        "--conflicts",
        choices=CONFLICT_POLICIES,
        default="drop",
        help="Spotify tracks repeated under different labels: drop them (default) or keep one "
        "row per label",
    )
    features.add_argument("--splits", type=Path, help="GTZAN split-list directory")
    features.add_argument("--no-refit", action="store_true", help="ship the train-only model")
    features.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    features.add_argument(
        "--cv-folds",
        type=int,
        default=0,
        help="estimate by artist-grouped K-fold cross-validation and ship weights trained on "
        "all rows (0: one train/valid/test split)",
    )
    features.add_argument(
        "--cv-save",
        type=Path,
        help="with --cv-folds, also write the out-of-fold predictions (.npz) for "
        "`python -m training.studies.crossval_cli compare`",
    )
    add_audio_parser(commands)
    add_ensemble_parser(commands)
    add_abstention_parser(commands)
    return parser


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected widths like 256,128, got {text!r}") from error
    if not sizes:
        raise argparse.ArgumentTypeError("give at least one hidden width")
    return sizes


def config_from_arguments(arguments: argparse.Namespace) -> RunConfig:
    model, train = defaults_for(arguments.dataset)
    model_overrides = {
        "hidden_sizes": arguments.hidden,
        "dropout": arguments.dropout,
        "members": arguments.members,
    }
    train_overrides = {
        "seed": arguments.seed,
        "epochs": arguments.epochs,
        "batch_size": arguments.batch_size,
        "learning_rate": arguments.lr,
        "weight_decay": arguments.weight_decay,
        "patience": arguments.patience,
        "schedule": arguments.schedule,
        "label_smoothing": arguments.label_smoothing,
        "stop_on": arguments.stop_on,
        "input_noise": arguments.input_noise,
        "bootstrap": arguments.bootstrap,
        "device": arguments.device,
        "class_weighting": None
        if arguments.class_weights is None
        else arguments.class_weights == "balanced",
    }
    model = replace(model, **{k: v for k, v in model_overrides.items() if v is not None})
    train = replace(train, **{k: v for k, v in train_overrides.items() if v is not None})
    trees = TREE_DEFAULTS.get(arguments.dataset)
    if arguments.trees is not None:
        trees = (trees or TreeConfig()) if arguments.trees else None
    if arguments.tree_weight is not None:
        if trees is None:
            raise ValueError("--tree-weight needs trees (--trees)")
        trees = replace(trees, weight=arguments.tree_weight)
    titles = None
    if arguments.titles:
        titles = TitleConfig()
        if arguments.title_max_length is not None:
            titles = replace(titles, max_length=arguments.title_max_length)
    elif arguments.title_max_length is not None:
        raise ValueError("--title-max-length needs --titles")
    return RunConfig(
        dataset=arguments.dataset,
        data=arguments.data,
        out=arguments.out,
        name=arguments.name or DEFAULT_NAMES[arguments.dataset],
        model=model,
        train=train,
        drop_bad_rows=arguments.drop_bad_rows,
        genres=tuple(arguments.genres) if arguments.genres else None,
        conflicts=arguments.conflicts,
        trees=trees,
        titles=titles,
        splits_dir=arguments.splits,
        refit=not arguments.no_refit,
        cv_folds=arguments.cv_folds,
        cv_save=arguments.cv_save,
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    if arguments.command == "audio":
        return run_audio_command(arguments)
    if arguments.command == "ensemble":
        return run_ensemble_command(arguments)
    if arguments.command == "abstention":
        return run_abstention_command(arguments)
    try:
        config = config_from_arguments(arguments)
    except ValueError as error:
        print(f"genre-train: {error}", file=sys.stderr)
        return 2
    from training.features.pipeline import run_features  # heavy (torch, matplotlib): after parsing

    try:
        outcome = run_features(config, progress=not arguments.no_progress)
    except (DataFormatError, ValueError) as error:
        print(f"genre-train: {error}", file=sys.stderr)
        return 1
    print(f"data: {outcome.report['data_report']}")
    print_published(outcome.directory, outcome.manifest.metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
