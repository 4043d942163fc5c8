"""Grouped K-fold cross-validation of the features training procedure.

One artist-grouped test part of ~1,800 Spotify rows leaves about 1.2 points of accuracy of
noise, too much to tell settings apart. Here every row is scored once, by a model that never saw
its group: the distinct groups are dealt into ``folds`` parts in a seeded order, and for each
fold ``select_and_refit`` runs on the other folds exactly as a single run does (an inner
grouped valid part chooses each member's epoch and the temperature; the weights are refit on
inner train+valid), then scores the fold. Temperatures are never fitted on scored rows.

Standard errors are clustered by group (rows of one artist are not independent), and two
settings run on the same folds are compared by the clustered standard error of their per-row
difference, which is much smaller than either setting's own error.

    python -m training.studies.crossval_cli run --save cv/v1.npz --dataset spotify11 \\
        --data ../shared/data
    python -m training.studies.crossval_cli compare cv/v1.npz cv/wd-b64.npz
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from training.features.boosting import BlendParts
from training.features.config import RunConfig
from training.features.folds import (
    FoldResult,
    fold_split,
    grouped_folds,
    held_out_folds,
    score_fold,
)
from training.features.tabular import StrArray, TabularDataset
from training.features.title_stack import TitleParts
from training.features.train import FloatArray, IntArray

Values = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold predictions for the rows of the folds that were run."""

    labels: IntArray
    groups: StrArray
    folds: tuple[FoldResult, ...]

    @property
    def rows(self) -> IntArray:
        rows: IntArray = np.concatenate([fold.rows for fold in self.folds])
        return rows

    @property
    def held_out_rows(self) -> IntArray:
        """Rows of the held-out table (``cross_validate``'s ``held_out``) the folds scored."""
        rows: IntArray = np.concatenate([fold.held_out_rows for fold in self.folds])
        return rows

    @property
    def has_titles(self) -> bool:
        return any(fold.untitled_logits is not None for fold in self.folds)

    def probabilities(self, calibrated: bool = True, titles: bool = True) -> FloatArray:
        """``(rows, C)`` in the order of ``rows``; calibrated by each fold's own temperature.
        ``titles=False``: the answers to the same rows sent without their titles."""
        parts = [(_logits(fold, titles), fold.temperature) for fold in self.folds]
        return _softmax(parts, calibrated)

    def held_out_probabilities(self, titles: bool = True) -> FloatArray:
        """Calibrated ``(held-out rows, C)`` in the order of ``held_out_rows``."""
        return _softmax(
            [
                (_logits(f, titles, held_out=True), f.temperature)
                for f in self.folds
                if f.held_out_rows.size
            ]
        )

    def member_epochs(self) -> tuple[int, ...]:
        """Each member's chosen epoch, the median over the folds: what a model trained on all
        rows runs for (as a single run's refit reuses its selection epochs)."""
        per_fold = np.array([fold.member_epochs for fold in self.folds])
        return tuple(int(np.median(column)) for column in per_fold.T)

    def temperature(self) -> float:
        """The median of the folds' temperatures, each fitted on its inner valid part."""
        return float(np.median([fold.temperature for fold in self.folds]))

    def blend(self) -> BlendParts | None:
        """The trees' rounds and the part temperatures, each the median over the folds (None
        without trees)."""
        parts = [fold.blend for fold in self.folds if fold.blend is not None]
        if not parts:
            return None
        return BlendParts(
            int(np.median([part.rounds for part in parts])),
            float(np.median([part.mlp_temperature for part in parts])),
            float(np.median([part.tree_temperature for part in parts])),
        )

    def title(self) -> TitleParts | None:
        """The title stack, each value the median over the folds (None without titles)."""
        parts = [fold.title for fold in self.folds if fold.title is not None]
        return TitleParts.median(parts) if parts else None

    def importance(self) -> dict[str, dict[str, float]]:
        """Permutation importance averaged over the folds that computed it."""
        computed = [fold.importance for fold in self.folds if fold.importance]
        if not computed:
            return {}
        return {
            name: {key: float(np.mean([fold[name][key] for fold in computed])) for key in values}
            for name, values in computed[0].items()
        }

    def per_row(self) -> dict[str, Values]:
        """Per scored row: ``correct`` (0/1) and ``log_loss`` (calibrated)."""
        return row_scores(self.probabilities(), self.labels[self.rows])

    def summary(self) -> dict[str, Any]:
        """Pooled accuracy and log-loss with group-clustered standard errors, and per fold."""
        values = self.per_row()
        groups = self.groups[self.rows]
        result: dict[str, Any] = {"rows": len(self.rows), "folds": len(self.folds)}
        for name, column in values.items():
            mean, error = clustered_mean(column, groups)
            result[name] = mean
            result[f"{name}_se"] = error
        offsets = np.cumsum([0, *(len(fold.rows) for fold in self.folds)])
        result["per_fold"] = [
            {
                "fold": fold.fold,
                "rows": len(fold.rows),
                "accuracy": float(values["correct"][start:end].mean()),
                "log_loss": float(values["log_loss"][start:end].mean()),
                "temperature": fold.temperature,
            }
            for fold, start, end in zip(self.folds, offsets[:-1], offsets[1:], strict=True)
        ]
        return result

    def save(self, path: Path) -> None:
        """One ``.npz`` per run (or per fold, for folds run in parallel; see ``merge``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"labels": self.labels, "groups": self.groups}
        for fold in self.folds:
            arrays[f"rows_{fold.fold}"] = fold.rows
            arrays[f"logits_{fold.fold}"] = fold.logits
            arrays[f"temperature_{fold.fold}"] = np.float64(fold.temperature)
            arrays[f"epochs_{fold.fold}"] = np.asarray(fold.member_epochs, dtype=np.int64)
            if fold.held_out_rows.size:
                arrays[f"heldrows_{fold.fold}"] = fold.held_out_rows
                arrays[f"heldlogits_{fold.fold}"] = fold.held_out_logits
            if fold.blend is not None:
                arrays[f"blend_{fold.fold}"] = np.array(
                    [fold.blend.rounds, fold.blend.mlp_temperature, fold.blend.tree_temperature]
                )
            if fold.title is not None and fold.untitled_logits is not None:
                arrays[f"title_{fold.fold}"] = fold.title.to_array()
                arrays[f"untitled_{fold.fold}"] = fold.untitled_logits
                if fold.held_out_untitled_logits is not None and fold.held_out_rows.size:
                    arrays[f"helduntitled_{fold.fold}"] = fold.held_out_untitled_logits
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> CrossValidation:
        with np.load(path, allow_pickle=False) as data:
            numbers = sorted(int(key.split("_")[1]) for key in data.files if key[:5] == "rows_")
            folds = tuple(
                FoldResult(
                    number,
                    data[f"rows_{number}"],
                    data[f"logits_{number}"],
                    float(data[f"temperature_{number}"]),
                    tuple(int(e) for e in data[f"epochs_{number}"]),
                    blend=_blend_parts(data, number),
                    **_held_out_parts(data, number),
                    **_title_parts(data, number),
                )
                for number in numbers
            )
            return cls(data["labels"], data["groups"], folds)

    @classmethod
    def merge(cls, parts: Sequence[CrossValidation]) -> CrossValidation:
        """Folds run separately (``--fold``) joined into one result; labels must agree."""
        for part in parts[1:]:
            if not np.array_equal(part.labels, parts[0].labels):
                raise ValueError("cross-validation parts come from different data")
        folds = sorted((fold for part in parts for fold in part.folds), key=lambda f: f.fold)
        if len({fold.fold for fold in folds}) != len(folds):
            raise ValueError("a fold appears in two parts")
        return cls(parts[0].labels, parts[0].groups, tuple(folds))


def _softmax(parts: Sequence[tuple[FloatArray, float]], calibrated: bool = True) -> FloatArray:
    """Each part's logits divided by its temperature (or not), softmaxed and stacked."""
    result: FloatArray = np.concatenate(
        [
            torch.softmax(torch.from_numpy(logits) / (t if calibrated else 1.0), 1).numpy()
            for logits, t in parts
        ]
    )
    return result


def row_scores(probabilities: FloatArray, labels: IntArray) -> dict[str, Values]:
    """Per row: ``correct`` (0/1) and ``log_loss`` of ``(N, C)`` probabilities."""
    scores = probabilities.astype(np.float64)
    chosen = np.clip(scores[np.arange(len(labels)), labels], 1e-15, 1.0)
    return {
        "correct": (scores.argmax(axis=1) == labels).astype(np.float64),
        "log_loss": -np.log(chosen),
    }


def _blend_parts(data: Any, number: int) -> BlendParts | None:
    if f"blend_{number}" not in data.files:
        return None
    rounds, mlp_temperature, tree_temperature = data[f"blend_{number}"].tolist()
    return BlendParts(int(rounds), mlp_temperature, tree_temperature)


def _held_out_parts(data: Any, number: int) -> dict[str, Any]:
    if f"heldrows_{number}" not in data.files:
        return {}
    return {
        "held_out_rows": data[f"heldrows_{number}"],
        "held_out_logits": data[f"heldlogits_{number}"],
    }


def _title_parts(data: Any, number: int) -> dict[str, Any]:
    if f"title_{number}" not in data.files:
        return {}
    held = f"helduntitled_{number}"
    return {
        "title": TitleParts.from_array(data[f"title_{number}"].tolist()),
        "untitled_logits": data[f"untitled_{number}"],
        "held_out_untitled_logits": data[held] if held in data.files else None,
    }


def _logits(fold: FoldResult, titles: bool, held_out: bool = False) -> FloatArray:
    """A fold's logits of its scored (or held-out) rows, with or without their titles."""
    if held_out:
        bare = fold.held_out_untitled_logits
        return fold.held_out_logits if titles or bare is None else bare
    return fold.logits if titles or fold.untitled_logits is None else fold.untitled_logits


def clustered_mean(values: npt.NDArray[np.floating[Any]], groups: StrArray) -> tuple[float, float]:
    """The mean of ``values`` and its standard error with rows clustered by ``groups`` (the
    sandwich estimator: residual sums per group, small-sample factor G / (G - 1))."""
    mean = float(values.mean())
    _, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=values - mean)
    count = len(sums)
    if count < 2:
        return mean, float("nan")
    return mean, float(np.sqrt(count / (count - 1) * (sums**2).sum()) / len(values))


def paired_difference(first: CrossValidation, second: CrossValidation) -> dict[str, float]:
    """``second - first`` per metric on the rows both scored, with its clustered SE."""
    rows_a, rows_b = first.rows, second.rows
    if not np.array_equal(np.sort(rows_a), np.sort(rows_b)):
        raise ValueError("the two cross-validations scored different rows")
    a, b = first.per_row(), second.per_row()
    order_a, order_b = np.argsort(rows_a), np.argsort(rows_b)
    groups = first.groups[np.sort(rows_a)]
    result: dict[str, float] = {}
    for name in a:
        mean, error = clustered_mean(b[name][order_b] - a[name][order_a], groups)
        result[name], result[f"{name}_se"] = mean, error
    return result


def cross_validate(
    dataset: TabularDataset,
    config: RunConfig,
    folds: int,
    only: Sequence[int] | None = None,
    progress: bool = False,
    held_out: TabularDataset | None = None,
) -> CrossValidation:
    """Runs ``select_and_refit`` for each fold (or the folds in ``only``) and scores the fold
    with the model that would ship from that fold's rows (the refit one, if ``config.refit``).
    Fold assignment and inner splits are seeded by ``config.train.seed``. Rows of ``held_out``
    (same columns, never trained on) are scored too, each by the fold of its group
    (``training.features.all_rows``); they change nothing else."""
    seed = config.train.seed
    fold_of_row = grouped_folds(dataset.groups, folds, seed)
    held_out_fold = np.zeros(0, dtype=np.int64)
    if held_out is not None:
        held_out_fold = held_out_folds(dataset.groups, fold_of_row, held_out.groups, folds, seed)
    results = []
    for fold in only if only is not None else range(folds):
        if not 0 <= fold < folds:
            raise ValueError(f"fold {fold} is not in 0..{folds - 1}")
        split = fold_split(dataset.groups, fold_of_row, fold, config.valid_fraction, seed)
        split.assert_grouped(dataset.groups)
        extra = (held_out, np.flatnonzero(held_out_fold == fold)) if held_out else None
        results.append(score_fold(dataset, split, config, fold, progress, extra))
    return CrossValidation(dataset.labels, dataset.groups, tuple(results))
