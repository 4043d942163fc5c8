"""Where the points go between a default gradient-boosting baseline and ``spotify11-mlp`` (#25).

Issue #25 measured scikit-learn's ``HistGradientBoostingClassifier`` (``max_iter=300,
learning_rate=0.05``, otherwise defaults) on the 14 raw columns of the shared ``train.csv``,
NaN left missing, at 54.6% under artist-grouped 5-fold cross-validation over all rows, against
48.8% for ``spotify11-mlp/3``. This study changes one thing at a time, on the same folds, to
see which step costs what: the duration unit, missing values, the single-genre training rows,
the tree settings, and what a title adds.

Two protocols, both artist-grouped 5-fold cross-validation with each row judged by its own
label: the issue's (``GroupKFold`` on ``Artist Name`` over the 15,252 rows as the file has
them) and the project's (its own seeded artist folds over the 15,150 distinct rows, the folds
``spotify11-mlp/4`` was measured on), so the baseline can be compared with v4 row for row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import GroupKFold

from training.features.all_rows import any_label_correct
from training.features.boosting import best_rounds, fit_booster
from training.features.config import TitleConfig, TreeConfig
from training.features.crossval import clustered_mean, row_scores
from training.features.datasets import load_dataset
from training.features.folds import grouped_folds
from training.features.preprocessor_fit import IMPUTATION_SPECS, fit_preprocessor
from training.features.spotify_data import SPOTIFY11_FEATURES
from training.features.tabular import ambiguous_keys
from training.features.title_stack import fit_title_stack
from training.features.titles import fit_title_member, title_codes, title_log_probabilities
from training.fitting import fit_temperature
from training.splits import group_split

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
DURATION = SPOTIFY11_FEATURES.index("duration_in min/ms")
MINUTES_BELOW = 100.0  # the file's durations under 100 are minutes (README of the shared data)
CLASSES = 11


@dataclass(frozen=True)
class Rows:
    """The rows a protocol scores: raw features (NaN = missing), labels, artists, track keys
    (artist + title, for ambiguity and any-label), titles, and each row's fold."""

    features: FloatArray
    labels: IntArray
    artists: npt.NDArray[np.str_]
    keys: npt.NDArray[np.str_]
    titles: list[str]
    folds: IntArray

    @property
    def ambiguous(self) -> npt.NDArray[np.bool_]:
        return ambiguous_keys(self.keys, self.labels)


def issue_rows(train_csv: Path) -> Rows:
    """The file's 15,252 rows as pandas reads them, folds by ``GroupKFold`` on ``Artist Name``
    (the issue's protocol)."""
    frame = pd.read_csv(train_csv)
    labels = frame["Class"].to_numpy(dtype=np.int64)
    artists = frame["Artist Name"].astype(str).to_numpy()
    features = frame[list(SPOTIFY11_FEATURES)].to_numpy(dtype=np.float64)
    folds = np.zeros(len(frame), dtype=np.int64)
    for fold, (_, test) in enumerate(GroupKFold(5).split(features, labels, artists)):
        folds[test] = fold
    titles = frame["Track Name"].astype(str).str.strip().tolist()
    keys = np.array(
        [f"{a.strip().lower()}\t{t.lower()}" for a, t in zip(artists, titles, strict=True)]
    )
    return Rows(features, labels, artists, keys, titles, folds)


# One variant: (features, rows.fit rows, rows scored) -> probabilities of the scored rows.
Variant = Callable[[Rows, IntArray, IntArray], FloatArray]


def repaired(features: FloatArray) -> FloatArray:
    """Durations in minutes turned into milliseconds, as the model's preprocessing does."""
    result = features.copy()
    minutes = result[:, DURATION] < MINUTES_BELOW
    result[minutes, DURATION] *= 60_000.0
    return result


def baseline(
    *,
    repair: bool = False,
    impute: str = "",
    single_genre: bool = False,
    scored_in_ms: bool = False,
    settings: TreeConfig | None = None,
    titles: TitleConfig | None = None,
    seed: int = 0,
) -> Variant:
    """HGB on the 14 columns: ``repair`` the duration unit; ``impute`` missing values
    (``linear``: the shipped model's imputers, ``median``; "": NaN left to the trees);
    ``single_genre``: train on rows of tracks with one genre only; ``scored_in_ms``: score the
    rows with their durations in milliseconds, as a Spotify export gives every duration;
    ``settings``: v3's tree settings with the rounds chosen on an inner artist-grouped valid
    part (else the issue's: 300 rounds at 0.05, scikit-learn's own early stopping);
    ``titles``: stack the title member, its weights fitted on that inner part."""

    def run(rows: Rows, fit: IntArray, scored: IntArray) -> FloatArray:
        features = repaired(rows.features) if repair else rows.features
        if single_genre:
            fit = fit[~rows.ambiguous[fit]]
        if impute:
            features = _imputed(features, fit, impute)
        test_features = repaired(features[scored]) if scored_in_ms else features[scored]
        if settings is None and titles is None:
            return _proba(_fit(features[fit], rows.labels[fit], None, seed), test_features)
        inner = group_split(rows.artists[fit], 0.15, 0.0, seed)
        train, valid = fit[inner.train], fit[inner.valid]
        rounds = None
        if settings is not None:
            rounds = _best_rounds(features, rows.labels, train, valid, settings, seed)
        model = _fit(features[fit], rows.labels[fit], settings, seed, rounds)
        probabilities = _proba(model, test_features)
        if titles is None:
            return probabilities
        return _with_titles(
            rows, features, train, valid, fit, scored, probabilities, titles, settings, rounds, seed
        )

    return run


def _proba(model: HistGradientBoostingClassifier, x: FloatArray) -> FloatArray:
    """(N, 11) probabilities, zero for a genre the fit rows never held."""
    result = np.zeros((len(x), CLASSES))
    result[:, model.classes_.astype(np.int64)] = model.predict_proba(x)
    return result


def _fit(
    x: FloatArray, y: IntArray, settings: TreeConfig | None, seed: int, rounds: int | None = None
) -> HistGradientBoostingClassifier:
    """The issue's HGB (``settings`` None), or the shipped trees' settings for ``rounds``."""
    if settings is None:
        return HistGradientBoostingClassifier(
            max_iter=300, learning_rate=0.05, random_state=seed
        ).fit(x, y)
    return fit_booster(x.astype(np.float32), y, settings, rounds, seed)


def _best_rounds(
    features: FloatArray,
    labels: IntArray,
    train: IntArray,
    valid: IntArray,
    settings: TreeConfig,
    seed: int,
) -> int:
    booster = _fit(features[train], labels[train], settings, seed)
    return best_rounds(booster, features[valid].astype(np.float32), labels[valid])


def _with_titles(
    rows: Rows,
    features: FloatArray,
    train: IntArray,
    valid: IntArray,
    fit: IntArray,
    scored: IntArray,
    numeric: FloatArray,
    titles: TitleConfig,
    settings: TreeConfig | None,
    rounds: int | None,
    seed: int,
) -> FloatArray:
    """The title member stacked as the shipped model stacks it: member and numeric model fitted
    on the inner train part, temperature and stack fitted on the inner valid part, both refit on
    every fit row, the stack applied to the scored rows."""
    labels = rows.labels
    selection = _fit(features[train], labels[train], settings, seed, rounds)
    z_valid = torch.from_numpy(np.log(np.clip(_proba(selection, features[valid]), 1e-12, 1)))
    temperature = fit_temperature(z_valid.float(), labels[valid])
    member = fit_title_member([rows.titles[i] for i in train], labels[train], CLASSES, titles)
    s_valid = title_log_probabilities(
        member, title_codes([rows.titles[i] for i in valid], titles.max_length)
    )
    parts = fit_title_stack(z_valid, s_valid, labels[valid], temperature)
    refit = fit_title_member([rows.titles[i] for i in fit], labels[fit], CLASSES, titles)
    s = title_log_probabilities(
        refit, title_codes([rows.titles[i] for i in scored], titles.max_length)
    )
    z = np.log(np.clip(numeric, 1e-12, 1.0))
    logits = (
        parts.numeric_weight * z + parts.title_weight * s + np.array(parts.class_bias)
    ) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    result: FloatArray = probabilities / probabilities.sum(axis=1, keepdims=True)
    return result


def _imputed(features: FloatArray, fit: IntArray, how: str) -> FloatArray:
    """Missing values filled from the fit rows alone: the shipped model's linear imputers (after
    the unit repair it makes; no scaling, which trees ignore) or column medians."""
    if how == "median":
        medians = np.nanmedian(features[fit], axis=0)
        return np.where(np.isnan(features), medians, features)
    preprocessor = fit_preprocessor(
        features[fit], SPOTIFY11_FEATURES, IMPUTATION_SPECS["spotify11"]
    )
    return preprocessor.fill(features.astype(np.float32)).astype(np.float64)


def cross_validate(rows: Rows, variant: Variant) -> FloatArray:
    """Out-of-fold probabilities ``(N, 11)`` of ``variant`` over ``rows``' folds."""
    result = np.zeros((len(rows.labels), CLASSES))
    for fold in np.unique(rows.folds):
        scored = np.flatnonzero(rows.folds == fold)
        fit = np.flatnonzero(rows.folds != fold)
        result[scored] = variant(rows, fit, scored)
    return result


def figures(rows: Rows, probabilities: FloatArray) -> dict[str, Any]:
    """Accuracy (with its artist-clustered SE and the folds' range), log-loss and top-3 over all
    rows; accuracy over the rows of tracks with one genre and counting any genre of the track;
    and on the rows of the four genres the file gives only in minutes."""
    scores = row_scores(probabilities.astype(np.float32), rows.labels)
    accuracy, accuracy_se = clustered_mean(scores["correct"], rows.artists)
    log_loss, log_loss_se = clustered_mean(scores["log_loss"], rows.artists)
    folds = [float(scores["correct"][rows.folds == f].mean()) for f in np.unique(rows.folds)]
    top3 = (np.argsort(-probabilities, axis=1)[:, :3] == rows.labels[:, None]).any(axis=1)
    predicted = probabilities.argmax(axis=1)
    single = ~rows.ambiguous
    minutes_only = np.isin(rows.labels, minutes_only_genres(rows))
    return {
        "rows": len(rows.labels),
        "accuracy": accuracy,
        "accuracy_se": accuracy_se,
        "accuracy_folds": [min(folds), max(folds)],
        "log_loss": log_loss,
        "log_loss_se": log_loss_se,
        "top3_accuracy": float(top3.mean()),
        "accuracy_single_genre": float(scores["correct"][single].mean()),
        "accuracy_any_label": float(any_label_correct(predicted, rows.keys, rows.labels).mean()),
        "accuracy_minutes_only_genres": float(scores["correct"][minutes_only].mean()),
        "predicted_minutes_only_genres": float(
            np.isin(predicted, minutes_only_genres(rows)).mean()
        ),
    }


def minutes_only_genres(rows: Rows) -> IntArray:
    """Genres whose every row has its duration in minutes (Acoustic/Folk, Bollywood, Country,
    Instrumental in the shared file)."""
    minutes = rows.features[:, DURATION] < MINUTES_BELOW
    genres = [g for g in np.unique(rows.labels) if minutes[rows.labels == g].all()]
    return np.array(genres, dtype=np.int64)


def unit_table(rows: Rows, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows per genre with their durations in milliseconds and in minutes."""
    minutes = rows.features[:, DURATION] < MINUTES_BELOW
    return [
        {
            "genre": name,
            "milliseconds": int(((rows.labels == g) & ~minutes).sum()),
            "minutes": int(((rows.labels == g) & minutes).sum()),
        }
        for g, name in enumerate(names)
    ]


def project_rows(data: Path, seed: int = 0) -> Rows:
    """The 15,150 distinct rows ``spotify11-mlp/4`` trains on (``--conflicts keep``), in its
    own artist folds (``training.features.folds.grouped_folds``, seed 0)."""
    dataset = load_dataset("spotify11", data, conflicts="keep")
    assert dataset.titles is not None
    return Rows(
        dataset.features.astype(np.float64),
        dataset.labels,
        dataset.groups,
        dataset.track_ids,
        dataset.titles.tolist(),
        grouped_folds(dataset.groups, 5, seed),
    )
