"""How tracks that the data labels twice change training and evaluation (Spotify sets).

About a fifth of the 11-class Spotify rows belong to an artist+track pair that appears under two
or more classes (mostly Alt_Music / Indie Alt / Rock / Metal). Whether a held-out evaluation
keeps such rows decides what is reachable: on them no model can be right more often than their
commonest label, so this study scores every fold row by a model that never saw its artist and
reports three populations: all rows, the unambiguous rows (what ``conflicts="drop"`` evaluates)
and the ambiguous rows, plus the best accuracy any model could reach on the ambiguous ones.

The folds and inner splits are those of ``training.crossval`` over the dataset loaded with
``conflicts="keep"``; ``--policy drop`` trains and selects on the unambiguous rows only (what the
shipped models do), ``--policy keep`` on all of them. Both score the same rows, so ``compare``
gives paired differences with artist-clustered standard errors. ``a.npz+b.npz`` in ``compare``
averages two runs' calibrated probabilities (an ensemble with half the members of each).

    python -m training.ambiguity run --policy drop --save cv/drop.npz --dataset spotify11 \
        --data ../shared/data --out /tmp/unused --members 5 --no-refit --no-trees
    python -m training.ambiguity compare cv/drop.npz cv/keep.npz cv/drop.npz+cv/keep.npz
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from training.config import RunConfig
from training.crossval import (
    clustered_mean,
    fold_split,
    grouped_folds,
    row_scores,
)
from training.crossval_cli import run_or_compare
from training.selection import select_and_refit
from training.splits import Split
from training.tabular import TabularDataset, ambiguous_keys
from training.train import FloatArray, IntArray, logits_of

POLICIES = ("drop", "keep")


def run_study(dataset: TabularDataset, config: RunConfig, folds: int, policy: str) -> FloatArray:
    """Calibrated out-of-fold probabilities ``(rows, C)`` for every row of ``dataset`` (loaded
    with conflicting rows kept), trained under ``policy``."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}")
    ambiguous = ambiguous_keys(dataset.track_ids, dataset.labels)
    seed = config.train.seed
    fold_of_row = grouped_folds(dataset.groups, folds, seed)
    probabilities = np.zeros((len(dataset), len(dataset.label_names)), dtype=np.float32)
    for fold in range(folds):
        split = fold_split(dataset.groups, fold_of_row, fold, config.valid_fraction, seed)
        if policy == "drop":
            split = Split(
                train=split.train[~ambiguous[split.train]],
                valid=split.valid[~ambiguous[split.valid]],
                test=split.test,
                method=split.method,
            )
        split.assert_grouped(dataset.groups)
        fitted = select_and_refit(dataset, split, config, progress=False)
        x = fitted.shipped_preprocessor.transform(dataset.features[split.test])
        logits = logits_of(fitted.shipped.model, x) / fitted.temperature
        probabilities[split.test] = torch.softmax(logits, 1).numpy()
        print(f"fold {fold}: temperature {fitted.temperature:.3f}", flush=True)
    return probabilities


def best_possible_accuracy(keys: np.ndarray, labels: IntArray) -> float:
    """The accuracy of an oracle that answers each key's commonest label on every row of it."""
    _, key_index = np.unique(keys, return_inverse=True)
    counts = np.zeros((key_index.max() + 1, int(labels.max()) + 1), dtype=np.int64)
    np.add.at(counts, (key_index, labels), 1)
    return float(counts.max(axis=1).sum() / len(labels))


def populations(ambiguous: np.ndarray) -> dict[str, np.ndarray]:
    return {"all": np.ones_like(ambiguous), "unambiguous": ~ambiguous, "ambiguous": ambiguous}


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
    from training.datasets import load_dataset

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
    parser = argparse.ArgumentParser(prog="python -m training.ambiguity", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="one policy over all folds (features flags follow)")
    run.add_argument("--policy", choices=POLICIES, required=True)
    run.add_argument("--folds", type=int, default=5)
    run.add_argument("--save", type=Path, required=True)
    return run_or_compare(parser, commands, argv, _run, _compare)


if __name__ == "__main__":
    sys.exit(main())
