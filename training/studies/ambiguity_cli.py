"""``python -m training.studies.ambiguity_cli``: ``run`` one training policy over all folds,
``compare`` saved runs on all, unambiguous and ambiguous rows (``training.studies.ambiguity``).

    python -m training.studies.ambiguity_cli run --policy drop --save cv/drop.npz \\
        --dataset spotify11 --data ../shared/data --out /tmp/unused --members 5 --no-refit \\
        --no-trees
    python -m training.studies.ambiguity_cli compare cv/drop.npz cv/keep.npz \\
        cv/drop.npz+cv/keep.npz
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from training.features.crossval import clustered_mean, row_scores
from training.features.tabular import ambiguous_keys
from training.studies.ambiguity import POLICIES, best_possible_accuracy, populations, run_study
from training.studies.crossval_cli import run_or_compare


def _load(item: str) -> dict[str, np.ndarray]:
    """One saved run, or ``a+b+...``: the mean of their probabilities."""
    runs = [dict(np.load(Path(path), allow_pickle=False)) for path in item.split("+")]
    for run in runs[1:]:
        if not np.array_equal(run["labels"], runs[0]["labels"]):
            raise ValueError(f"{item}: runs of different data")
    merged = dict(runs[0])
    merged["probabilities"] = np.mean([run["probabilities"] for run in runs], axis=0)
    return merged


def _compare(items: Sequence[str]) -> int:
    runs = [_load(item) for item in items]
    labels, groups, ambiguous = runs[0]["labels"], runs[0]["groups"], runs[0]["ambiguous"]
    ceiling = best_possible_accuracy(runs[0]["keys"][ambiguous], labels[ambiguous])
    print(
        f"{len(labels)} rows, {int(ambiguous.sum())} ambiguous; best possible accuracy on the "
        f"ambiguous rows: {100 * ceiling:.1f}%"
    )
    base = row_scores(runs[0]["probabilities"], labels)
    for item, run in zip(items, runs, strict=True):
        scores = row_scores(run["probabilities"], labels)
        correct, loss = scores["correct"], scores["log_loss"]
        parts = []
        for name, rows in populations(ambiguous).items():
            accuracy, accuracy_se = clustered_mean(correct[rows], groups[rows])
            log_loss, log_loss_se = clustered_mean(loss[rows], groups[rows])
            text = (
                f"{name} {100 * accuracy:.2f} ± {100 * accuracy_se:.2f}, "
                f"{log_loss:.4f} ± {log_loss_se:.4f}"
            )
            if item != items[0]:
                d_acc = clustered_mean(correct[rows] - base["correct"][rows], groups[rows])
                d_loss = clustered_mean(loss[rows] - base["log_loss"][rows], groups[rows])
                text += (
                    f" (vs first {100 * d_acc[0]:+.2f} ± {100 * d_acc[1]:.2f}, "
                    f"{d_loss[0]:+.4f} ± {d_loss[1]:.4f})"
                )
            parts.append(text)
        print(f"{item}: " + " | ".join(parts))
    return 0


def _run(arguments: argparse.Namespace, rest: list[str]) -> int:
    from training.cli import build_parser, config_from_arguments
    from training.features.datasets import load_dataset

    features = build_parser().parse_args(["features", *rest])
    config = replace(config_from_arguments(features), importance_repeats=0, conflicts="keep")
    dataset = load_dataset(
        config.dataset, config.data, config.drop_bad_rows, config.genres, config.conflicts
    )
    probabilities = run_study(dataset, config, arguments.folds, arguments.policy)
    arguments.save.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        arguments.save,
        probabilities=probabilities,
        labels=dataset.labels,
        groups=dataset.groups,
        keys=dataset.track_ids,
        ambiguous=ambiguous_keys(dataset.track_ids, dataset.labels),
    )
    return _compare([str(arguments.save)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.studies.ambiguity_cli", description=__doc__
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="one policy over all folds (features flags follow)")
    run.add_argument("--policy", choices=POLICIES, required=True)
    run.add_argument("--folds", type=int, default=5)
    run.add_argument("--save", type=Path, required=True)
    return run_or_compare(parser, commands, argv, _run, _compare)


if __name__ == "__main__":
    sys.exit(main())
