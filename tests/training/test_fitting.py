"""Preprocessing is fitted from training features alone, never from the label."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from modelcore.preprocessing import FeaturePreprocessor
from tests.training.synthetic import SPOTIFY11_HEADER, spotify11_row, write_csv
from training.features.preprocessor_fit import (
    IMPUTATION_SPECS,
    ImputerSpec,
    PreprocessingSpec,
    fit_preprocessor,
)
from training.features.selection import fit_preprocessing
from training.features.spotify_data import load_spotify11


@pytest.fixture
def spotify_path(tmp_path: Path) -> Path:
    rows = [
        spotify11_row(
            f"A{i}",
            f"T{i}",
            i % 11,
            i,
            **({"key": "", "instrumentalness": ""} if i % 4 == 0 else {}),
            **({"duration_in min/ms": 3.25} if i % 5 == 0 else {}),
        )
        for i in range(80)
    ]
    return write_csv(tmp_path / "train.csv", SPOTIFY11_HEADER, rows)


def test_imputation_ignores_the_label(spotify_path: Path) -> None:
    dataset = load_spotify11(spotify_path)
    rows = np.arange(len(dataset))
    shuffled = replace(dataset, labels=np.random.default_rng(0).permutation(dataset.labels))
    assert not np.array_equal(shuffled.labels, dataset.labels)
    assert fit_preprocessing(dataset, rows) == fit_preprocessing(shuffled, rows)
    assert fit_preprocessing(dataset, rows).to_dict() == fit_preprocessing(shuffled, rows).to_dict()


def test_spotify_preprocessor_repairs_minutes_and_fills_gaps(spotify_path: Path) -> None:
    dataset = load_spotify11(spotify_path)
    pre = fit_preprocessing(dataset, np.arange(len(dataset)))
    assert pre.imputable == frozenset({"Popularity", "key", "instrumentalness"})
    filled = pre.fill(dataset.features)
    duration = filled[:, pre.column("duration_in min/ms")]
    assert duration.min() > 100_000  # 3.25 minutes became 195,000 ms
    key = filled[:, pre.column("key")]
    assert np.all(key == np.rint(key))
    assert key.min() >= 0
    assert key.max() <= 11
    instrumental = filled[:, pre.column("instrumentalness")]
    assert instrumental.min() >= 0
    assert instrumental.max() <= 1
    again = FeaturePreprocessor.from_dict(pre.to_dict())
    assert np.array_equal(again.transform(dataset.features), pre.transform(dataset.features))
    assert not np.isnan(pre.transform(dataset.features)).any()


def test_linear_imputer_recovers_a_linear_relation() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = 2.0 * a + 1.0
    b[:20] = np.nan
    spec = PreprocessingSpec(imputers=(ImputerSpec("b", ("a",), ridge=0.0),))
    pre = fit_preprocessor(np.stack([a, b], axis=1), ("a", "b"), spec)
    filled = pre.fill(np.array([[3.0, np.nan]]))
    assert filled[0, 1] == pytest.approx(7.0, rel=1e-4)


def test_gtzan_variances_are_logged() -> None:
    spec = IMPUTATION_SPECS["gtzan30"]
    assert "mfcc1_var" in spec.log_features
    assert "mfcc1_mean" not in spec.log_features
    rows = np.abs(np.random.default_rng(0).normal(size=(30, 2))) * [1.0, 1e6]
    pre = fit_preprocessor(rows, ("m", "v"), PreprocessingSpec(log_features=("v",)))
    assert [t.feature for t in pre.log_transforms] == ["v"]
    assert abs(pre.transform(rows).mean(axis=0)).max() < 1e-4


def test_predictor_that_is_itself_imputed_is_refused() -> None:
    spec = PreprocessingSpec(imputers=(ImputerSpec("a", ("b",)), ImputerSpec("b", ("c",))))
    with pytest.raises(ValueError, match="not required"):
        fit_preprocessor(np.ones((5, 3)), ("a", "b", "c"), spec)
