"""Artist-grouped folds, and one fold of a cross-validation: the shipped procedure run on the
other folds (``select_and_refit``), then the fold scored by the model that would ship from
them (``training.features.crossval`` pools the folds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from training.evaluate import permutation_importance
from training.features.boosting import BlendParts
from training.features.config import RunConfig
from training.features.selection import model_inputs, select_and_refit, uses_titles
from training.features.tabular import StrArray, TabularDataset
from training.features.title_stack import TitleParts, untitled
from training.features.train import EpochRecord, FloatArray, IntArray, logits_of
from training.splits import Split, group_split


def grouped_folds(groups: StrArray, folds: int, seed: int) -> IntArray:
    """The fold (0 .. ``folds`` - 1) of each row: the distinct groups, in an order shuffled by
    ``seed``, each go to the fold holding the fewest rows so far (sizes stay within one group
    of each other)."""
    unique, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if not 2 <= folds <= len(unique):
        raise ValueError(f"folds must be between 2 and the number of groups ({len(unique)})")
    sizes = np.zeros(folds, dtype=np.int64)
    fold_of_group = np.empty(len(unique), dtype=np.int64)
    for group in np.random.default_rng(seed).permutation(len(unique)):
        fold = int(np.argmin(sizes))
        fold_of_group[group] = fold
        sizes[fold] += counts[group]
    result: IntArray = fold_of_group[inverse]
    return result


def held_out_folds(
    groups: StrArray, fold_of_row: IntArray, held_out_groups: StrArray, folds: int, seed: int
) -> IntArray:
    """The fold of each held-out row: its group's fold among the training rows, or, for groups
    that only held-out rows have, a fold dealt round-robin in an order shuffled by ``seed``."""
    fold_of_group = dict(zip(groups.tolist(), fold_of_row.tolist(), strict=True))
    unseen = sorted(set(held_out_groups.tolist()) - fold_of_group.keys())
    for position, index in enumerate(np.random.default_rng(seed).permutation(len(unseen))):
        fold_of_group[unseen[index]] = position % folds
    return np.array([fold_of_group[group] for group in held_out_groups.tolist()], dtype=np.int64)


def fold_split(
    groups: StrArray, fold_of_row: IntArray, fold: int, valid_fraction: float, seed: int
) -> Split:
    """Fold ``fold`` is the test part; the other folds' groups are split into train and a
    grouped valid part holding about ``valid_fraction`` of their rows."""
    test = np.flatnonzero(fold_of_row == fold).astype(np.int64)
    rest = np.flatnonzero(fold_of_row != fold).astype(np.int64)
    inner = group_split(groups[rest], valid_fraction, 0.0, seed + fold)
    return Split(
        train=rest[inner.train],
        valid=rest[inner.valid],
        test=test,
        method=f"grouped {int(fold_of_row.max()) + 1}-fold cross-validation (seed {seed})",
    )


@dataclass(frozen=True)
class FoldResult:
    """What one fold's model said about its scored rows: logits ``(n, C)`` before the
    temperature, the temperature fitted on the fold's inner valid part, each member's epoch;
    permutation importance on the scored rows and the first member's selection history
    (neither is saved by ``save``)."""

    fold: int
    rows: IntArray
    logits: FloatArray
    temperature: float
    member_epochs: tuple[int, ...]
    importance: dict[str, dict[str, float]] = field(default_factory=dict)
    history: tuple[EpochRecord, ...] = ()
    blend: BlendParts | None = None
    held_out_rows: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    held_out_logits: FloatArray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    # With a title member: its stack, and the logits of the same rows sent without titles.
    title: TitleParts | None = None
    untitled_logits: FloatArray | None = None
    held_out_untitled_logits: FloatArray | None = None


def score_fold(
    dataset: TabularDataset,
    split: Split,
    config: RunConfig,
    fold: int,
    progress: bool,
    held_out: tuple[TabularDataset, IntArray] | None,
) -> FoldResult:
    fitted = select_and_refit(dataset, split, config, progress)
    preprocessor, model, temperature = (
        fitted.shipped_preprocessor,
        fitted.shipped.model,
        fitted.temperature,
    )

    def inputs(table: TabularDataset, rows: IntArray) -> FloatArray:
        return model_inputs(table, config, preprocessor.transform(table.features[rows]), rows)

    def scored(x: FloatArray) -> dict[str, FloatArray | None]:
        titled = uses_titles(dataset, config)
        bare = logits_of(model, untitled(x, len(dataset.feature_names))).numpy() if titled else None
        return {"logits": logits_of(model, x).numpy(), "untitled": bare}

    x_test = inputs(dataset, split.test)
    test = scored(x_test)
    extra: dict[str, Any] = {}
    if held_out is not None:
        table, rows = held_out
        held = scored(inputs(table, rows))
        extra = {
            "held_out_rows": rows,
            "held_out_logits": held["logits"],
            "held_out_untitled_logits": held["untitled"],
        }

    def predict(rows: FloatArray) -> FloatArray:
        result: FloatArray = torch.softmax(logits_of(model, rows) / temperature, 1).numpy()
        return result

    importance = (
        permutation_importance(
            predict,
            x_test,
            dataset.labels[split.test],
            dataset.feature_names,
            config.importance_repeats,
            config.train.seed,
        )
        if config.importance_repeats
        else {}
    )
    assert test["logits"] is not None
    return FoldResult(
        fold,
        split.test,
        test["logits"],
        temperature,
        fitted.selection.member_epochs,
        importance,
        tuple(fitted.selection.history),
        fitted.blend,
        title=fitted.title,
        untitled_logits=test["untitled"],
        **extra,
    )
