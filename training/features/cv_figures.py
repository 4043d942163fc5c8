"""The figures of a cross-validated run, for every population of rows a caller's traffic holds.

The headline figures (``accuracy``, ``log_loss``, ``top3_accuracy``, ``macro_f1``, ``ece``)
cover the rows of tracks the data gives one genre, as they always have; ``*_all_rows`` every
distinct labelled row, each judged by its own label, and ``accuracy_any_label`` counts an answer
right when it is any genre of the track. Those rows are the out-of-fold rows themselves when the
run trained on tracks filed under two genres (``--conflicts keep``), or those plus the held-out
rows of such tracks when it left them out (``drop``). With a title member every figure comes
twice: unsuffixed, the answers given each row's title; ``*_no_title``, the answers to the same
rows sent without it, which are the numeric model's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from training.evaluate import classification_metrics, expected_calibration_error
from training.features.all_rows import all_rows_protocol, every_row_metrics
from training.features.crossval import CrossValidation, clustered_mean, row_scores
from training.features.tabular import TabularDataset, ambiguous_keys
from training.features.train import FloatArray

HEADLINE = ("accuracy", "macro_f1", "top3_accuracy", "log_loss", "ece")
NO_TITLE = "_no_title"
COUNTS = ("evaluated_rows_all", "ambiguous_rows")


@dataclass(frozen=True)
class Figures:
    """``evaluation``/``evaluation_uncalibrated``: ``classification_metrics`` of the rows with
    one genre; ``calibration``: temperature and ECE there; ``metrics``: the manifest's other
    figures; ``protocol``: the sentences ``split_protocol`` adds about rows and titles."""

    evaluation: dict[str, Any]
    evaluation_uncalibrated: dict[str, Any]
    calibration: dict[str, float]
    metrics: dict[str, float]
    protocol: str


def cv_figures(
    validation: CrossValidation,
    dataset: TabularDataset,
    held_out: TabularDataset | None,
    temperature: float,
) -> Figures:
    kept = validation.rows
    labels, groups = dataset.labels[kept], dataset.groups[kept]
    keys = dataset.track_ids[kept]
    if held_out is not None:
        held = validation.held_out_rows
        labels = np.concatenate([labels, held_out.labels[held]])
        groups = np.concatenate([groups, held_out.groups[held]])
        keys = np.concatenate([keys, held_out.track_ids[held]])
        ambiguous = np.arange(len(labels)) >= len(kept)
    else:
        ambiguous = ambiguous_keys(dataset.track_ids, dataset.labels)[kept]
    single = ~ambiguous

    def probabilities(calibrated: bool = True, titles: bool = True) -> FloatArray:
        scored = validation.probabilities(calibrated, titles)
        if held_out is None:
            return scored
        result: FloatArray = np.concatenate([scored, validation.held_out_probabilities(titles)])
        return result

    label_names = dataset.label_names
    calibrated, raw = probabilities(), probabilities(calibrated=False)
    evaluation = classification_metrics(calibrated[single], labels[single], label_names)
    metrics = _single_genre_errors(calibrated[single], labels[single], groups[single])
    every = ambiguous.any()
    if every:
        metrics.update(every_row_metrics(calibrated, labels, groups, keys, ambiguous))
    protocol = all_rows_protocol(metrics, int(single.sum()), held_out is None) if every else ""
    if validation.has_titles:
        bare = probabilities(titles=False)
        alone = classification_metrics(bare[single], labels[single], label_names)
        figures = {key: alone[key] for key in HEADLINE}
        figures.update(_single_genre_errors(bare[single], labels[single], groups[single]))
        if every:
            figures.update(every_row_metrics(bare, labels, groups, keys, ambiguous))
        metrics.update(
            {no_title(key): value for key, value in figures.items() if key not in COUNTS}
        )
        protocol += (
            " Every row has its track title. Figures without a suffix are the answers given the"
            " title; the *_no_title figures are the answers to the same rows sent without it"
            " (the numeric model's own, bit for bit: what a caller without titles gets)."
        )
    calibration = {
        "temperature": temperature,
        "ece_before": expected_calibration_error(raw[single], labels[single]),
        "ece_after": evaluation["ece"],
    }
    return Figures(
        evaluation,
        classification_metrics(raw[single], labels[single], label_names),
        calibration,
        metrics,
        protocol,
    )


def no_title(key: str) -> str:
    """The name of a figure's answer without titles: ``accuracy_all_rows_no_title``, its
    standard error ``accuracy_all_rows_no_title_se``."""
    if key.endswith("_se"):
        return f"{key[:-3]}{NO_TITLE}_se"
    return f"{key}{NO_TITLE}"


def _single_genre_errors(
    probabilities: FloatArray, labels: np.ndarray[Any, Any], groups: np.ndarray[Any, Any]
) -> dict[str, float]:
    """Artist-clustered standard errors of accuracy and log-loss over the given rows."""
    scores = row_scores(probabilities, labels)
    _, accuracy_se = clustered_mean(scores["correct"], groups)
    _, log_loss_se = clustered_mean(scores["log_loss"], groups)
    return {"accuracy_se": accuracy_se, "log_loss_se": log_loss_se}
