"""The loaders and splits on the real shared data (skipped, with the reason, without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.features.config import RunConfig
from training.features.datasets import load_dataset
from training.features.folds import fold_split, grouped_folds
from training.features.pipeline import make_split
from training.features.tabular import ambiguous_keys
from training.studies.ambiguity import best_possible_accuracy

pytestmark = pytest.mark.shared_data


def test_gtzan30_follows_the_filtered_lists(data_dir: Path) -> None:
    dataset = load_dataset("gtzan30", data_dir)
    assert len(dataset) == 640
    split = make_split(dataset, RunConfig("gtzan30", data_dir, Path("unused"), "x"))
    assert (len(split.train), len(split.valid), len(split.test)) == (443, 197, 0)


def test_gtzan3_subset_groups_segments_by_track(data_dir: Path) -> None:
    path = data_dir / "gtzan" / "features_3_sec.classical_jazz_rock_subset.csv"
    dataset = load_dataset("gtzan3", path)
    split = make_split(dataset, RunConfig("gtzan3", path, Path("unused"), "x"))
    split.assert_grouped(dataset.track_ids)
    assert {dataset.label_names[i] for i in set(dataset.labels.tolist())} == {
        "classical",
        "jazz",
        "rock",
    }


def test_spotify11_faults_are_counted(data_dir: Path) -> None:
    dataset = load_dataset("spotify11", data_dir)
    report = dataset.report
    assert report.rows_read == 15252
    assert report.rows_kept + report.duplicates_removed + report.conflicting_duplicates_removed == (
        15252
    )
    split = make_split(dataset, RunConfig("spotify11", data_dir, Path("unused"), "x"))
    split.assert_grouped(dataset.groups)


def test_spotify11_ambiguous_tracks_kept_once_per_label(data_dir: Path) -> None:
    dataset = load_dataset("spotify11", data_dir, conflicts="keep")
    report = dataset.report
    assert report.rows_kept + report.duplicates_removed == 15252
    ambiguous = ambiguous_keys(dataset.track_ids, dataset.labels)
    assert int(ambiguous.sum()) == report.conflicting_duplicates_kept == 2863
    assert len(dataset) - report.conflicting_duplicates_kept == 12287  # the "drop" rows
    folds = grouped_folds(dataset.groups, 5, seed=0)
    for key in np.unique(dataset.track_ids[ambiguous]):
        assert len(set(folds[dataset.track_ids == key].tolist())) == 1
    ceiling = best_possible_accuracy(dataset.track_ids[ambiguous], dataset.labels[ambiguous])
    assert 0.45 < ceiling < 0.5  # no model can be right on more of them


def test_spotify11_folds_keep_artists_whole(data_dir: Path) -> None:
    dataset = load_dataset("spotify11", data_dir)
    folds = grouped_folds(dataset.groups, 5, seed=0)
    sizes = sorted(int(size) for size in np.bincount(folds))
    assert sum(sizes) == 12287
    assert sizes[-1] - sizes[0] < 20
    split = fold_split(dataset.groups, folds, 0, valid_fraction=0.15, seed=0)
    split.assert_grouped(dataset.groups)
    assert 0.14 < len(split.valid) / (len(split.train) + len(split.valid)) < 0.17
