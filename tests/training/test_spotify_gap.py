"""The #25 study's parts (``training.studies.spotify_gap``) on small made rows: the unit repair,
the genres the file gives only in minutes, the figures, and the one-change-at-a-time variants."""

from __future__ import annotations

import numpy as np
import pytest

from training.studies.spotify_gap import (
    CLASSES,
    DURATION,
    Rows,
    baseline,
    cross_validate,
    figures,
    minutes_only_genres,
    repaired,
    unit_table,
)


def made_rows(count: int = 120, seed: int = 0) -> Rows:
    """Genre 0 always in minutes (as Acoustic/Folk in the file), the others in milliseconds;
    tempo separates genres 1 and 2; every row its own artist but pairs share a track."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count).astype(np.int64)
    features = rng.normal(size=(count, 14))
    features[:, 11] = np.where(labels == 1, 90.0, 150.0) + rng.normal(0, 5, count)
    minutes = rng.uniform(2.0, 6.0, count)
    features[:, DURATION] = np.where(labels == 0, minutes, minutes * 60_000.0)
    features[rng.random(count) < 0.2, 3] = np.nan
    artists = np.array([f"artist {i // 2}" for i in range(count)])
    keys = np.array([f"artist {i // 2}\ttrack {i // 2}" for i in range(count)])
    titles = [("love song" if label == 1 else "metal fire") for label in labels]
    folds = np.array([(i // 2) % 2 for i in range(count)], dtype=np.int64)
    return Rows(features, labels, artists, keys, titles, folds)


def test_the_repair_turns_minutes_into_milliseconds_only() -> None:
    rows = made_rows()
    fixed = repaired(rows.features)
    assert (fixed[:, DURATION] >= 100).all()
    ms = rows.features[:, DURATION] >= 100
    assert np.array_equal(fixed[ms], rows.features[ms], equal_nan=True)
    assert minutes_only_genres(rows).tolist() == [0]
    assert unit_table(rows, ("a", "b", "c"))[0]["milliseconds"] == 0


def test_figures_cover_all_rows_single_genre_and_any_label() -> None:
    rows = made_rows()
    perfect = np.eye(CLASSES)[rows.labels]
    result = figures(rows, perfect)
    assert result["accuracy"] == 1.0
    assert result["accuracy_minutes_only_genres"] == 1.0
    assert result["accuracy_folds"] == [1.0, 1.0]
    uniform = figures(rows, np.full((len(rows.labels), CLASSES), 1.0 / CLASSES))
    assert uniform["log_loss"] == pytest.approx(np.log(CLASSES))


@pytest.mark.timeout(600)  # ~15 s of CPU (the 300 boosting rounds, 6 fits)
def test_the_unit_is_what_tells_genre_0_apart_and_ms_durations_take_it_away() -> None:
    """A model that learns the unit names genre 0 from it; scored with every duration in
    milliseconds (a Spotify export) it never does; with the unit repaired it cannot learn it."""
    rows = made_rows()
    learnt = figures(rows, cross_validate(rows, baseline()))
    in_ms = figures(rows, cross_validate(rows, baseline(scored_in_ms=True)))
    fixed = figures(rows, cross_validate(rows, baseline(repair=True, impute="median")))
    assert learnt["accuracy_minutes_only_genres"] > 0.8
    assert in_ms["accuracy_minutes_only_genres"] < 0.05
    assert fixed["accuracy"] < learnt["accuracy"]
