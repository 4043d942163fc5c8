"""How tracks that the data labels twice change training and evaluation (Spotify sets).

About a fifth of the 11-class Spotify rows belong to an artist+track pair that appears under two
or more classes (mostly Alt_Music / Indie Alt / Rock / Metal). Whether a held-out evaluation
keeps such rows decides what is reachable: on them no model can be right more often than their
commonest label, so this study scores every fold row by a model that never saw its artist and
reports three populations: all rows, the unambiguous rows (what ``conflicts="drop"`` evaluates)
and the ambiguous rows, plus the best accuracy any model could reach on the ambiguous ones.

The folds and inner splits are those of ``training.features.crossval`` over the dataset loaded with
``conflicts="keep"``; ``--policy drop`` trains and selects on the unambiguous rows only (what the
shipped models do), ``--policy keep`` on all of them. Both score the same rows, so ``compare``
gives paired differences with artist-clustered standard errors. ``a.npz+b.npz`` in ``compare``
averages two runs' calibrated probabilities (an ensemble with half the members of each).

The commands are in ``training.studies.ambiguity_cli``.
"""

from __future__ import annotations

import numpy as np
import torch

from training.features.config import RunConfig
from training.features.folds import fold_split, grouped_folds
from training.features.selection import select_and_refit
from training.features.tabular import TabularDataset, ambiguous_keys
from training.features.train import FloatArray, IntArray, logits_of
from training.splits import Split

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
