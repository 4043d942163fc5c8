"""Figures over every labelled row, not only the rows training keeps.

With ``conflicts="drop"`` the models never train on the rows of tracks that the data files under
two or more genres (about a fifth of the 11-class Spotify rows), and a cross-validation of the
kept rows never scores them either. A caller's traffic holds such tracks, so a figure that
leaves them out promises more than a user sees. Here they are held out beside the kept rows:
each goes to the fold of its artist (artists seen only in such rows are dealt into the folds in
a seeded order), and that fold's model, which never saw the artist, scores it like any other
row of the fold. Training is untouched, so the shipped weights are the same with or without it.

Three figures come out of it: exact accuracy and log-loss over all rows (each row judged by its
own label, so a track filed under two genres is right on at most one of its rows), and
``accuracy_any_label``, where a prediction counts when it is any genre the data gives the track.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.features.config import RunConfig
from training.features.crossval import clustered_mean, row_scores
from training.features.datasets import load_dataset
from training.features.tabular import StrArray, TabularDataset, ambiguous_keys
from training.features.train import FloatArray, IntArray


def conflicting_rows(config: RunConfig) -> TabularDataset | None:
    """The rows a ``conflicts="drop"`` load leaves out (one per track and label), or None
    when there are none, the run keeps them itself, or the dataset has no such policy (GTZAN)."""
    if config.conflicts != "drop" or config.dataset.startswith("gtzan"):
        return None
    every = load_dataset(config.dataset, config.data, config.drop_bad_rows, config.genres, "keep")
    rows = np.flatnonzero(ambiguous_keys(every.track_ids, every.labels))
    return every.subset(rows) if len(rows) else None


def any_label_correct(
    predicted: IntArray, keys: StrArray, labels: IntArray
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Per row, 1.0 when ``predicted`` is any label that some row of the same key carries."""
    labels_of_key: dict[str, set[int]] = {}
    for key, label in zip(keys.tolist(), labels.tolist(), strict=True):
        labels_of_key.setdefault(key, set()).add(label)
    return np.array(
        [
            guess in labels_of_key[key]
            for guess, key in zip(predicted.tolist(), keys.tolist(), strict=True)
        ],
        dtype=np.float64,
    )


def every_row_metrics(
    probabilities: FloatArray,
    labels: IntArray,
    groups: StrArray,
    keys: StrArray,
    ambiguous: np.ndarray[Any, np.dtype[np.bool_]],
) -> dict[str, float]:
    """Pooled figures over every given row (standard errors clustered by artist):
    ``accuracy_all_rows``, ``log_loss_all_rows``, ``top3_accuracy_all_rows``,
    ``accuracy_any_label`` (right when the answer is any label of the row's ``key``) and
    ``accuracy_ambiguous_rows`` over the rows of tracks filed under two or more genres."""
    scores = row_scores(probabilities, labels)
    any_label = any_label_correct(probabilities.argmax(axis=1), keys, labels)
    top3 = (np.argsort(-probabilities, axis=1)[:, :3] == labels[:, None]).any(axis=1)
    result: dict[str, float] = {
        "evaluated_rows_all": len(labels),
        "ambiguous_rows": int(ambiguous.sum()),
        "top3_accuracy_all_rows": float(top3.mean()),
        "accuracy_ambiguous_rows": float(scores["correct"][ambiguous].mean()),
    }
    for name, values in (
        ("accuracy_all_rows", scores["correct"]),
        ("log_loss_all_rows", scores["log_loss"]),
        ("accuracy_any_label", any_label),
    ):
        result[name], result[f"{name}_se"] = clustered_mean(values, groups)
    return result


def all_rows_protocol(metrics: dict[str, float], kept_rows: int, trained_on_all: bool) -> str:
    """The sentence ``split_protocol`` adds for the all-rows figures."""
    total, ambiguous = int(metrics["evaluated_rows_all"]), int(metrics["ambiguous_rows"])
    if trained_on_all:
        where = (
            f" the {ambiguous} rows (one per track and genre) of tracks it files under two or"
            f" more genres were trained on (conflicts keep) and scored in their artists' folds,"
            f" but are not in those figures."
        )
        scored = "the same out-of-fold predictions,"
    else:
        where = (
            f" the {ambiguous} rows (one per track and genre) of tracks it files under two or"
            f" more genres were left out of training and of those figures."
        )
        scored = (
            "the same folds' models also score the left-out rows, each in its artist's fold"
            " (artists seen only in them dealt into folds by seed),"
        )
    return (
        f" Rows covered: accuracy, log_loss, top3_accuracy, macro_f1 and ece cover the {kept_rows}"
        f" rows of tracks the data gives one genre;{where} accuracy_all_rows, log_loss_all_rows"
        f" and top3_accuracy_all_rows cover all {total} distinct labelled rows (identical repeats"
        f" removed): {scored} each row judged by its own label; accuracy_any_label"
        f" counts a prediction right when it is any genre the data gives that track."
    )
