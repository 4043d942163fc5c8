"""Splits never put one track or artist on two sides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.training.synthetic import gtzan_rows, write_gtzan
from training.features.gtzan_data import load_gtzan_features
from training.features.tabular import DataFormatError
from training.splits import Split, group_split, read_split_lists, split_by_lists


def test_group_split_keeps_groups_whole_and_is_seeded() -> None:
    groups = np.array([f"artist{i % 37}" for i in range(500)])
    split = group_split(groups, valid_fraction=0.2, test_fraction=0.2, seed=3)
    split.assert_grouped(groups)
    assert len(split.train) + len(split.valid) + len(split.test) == 500
    assert 60 <= len(split.valid) <= 140
    assert 60 <= len(split.test) <= 140
    again = group_split(groups, valid_fraction=0.2, test_fraction=0.2, seed=3)
    assert np.array_equal(split.valid, again.valid)
    other = group_split(groups, valid_fraction=0.2, test_fraction=0.2, seed=4)
    assert not np.array_equal(split.valid, other.valid)


def test_three_second_segments_stay_with_their_track(tmp_path: Path) -> None:
    rows = gtzan_rows(genres=("jazz", "rock"), tracks_per_genre=5, segments=10)
    dataset = load_gtzan_features(write_gtzan(tmp_path / "f.csv", rows), segments=True)
    split = group_split(dataset.groups, 0.3, 0.2, seed=0)
    split.assert_grouped(dataset.groups)
    for part in (split.train, split.valid, split.test):
        for track in set(dataset.track_ids[part].tolist()):
            assert (dataset.track_ids[part] == track).sum() == 10


def test_split_lists_assign_tracks_and_count_the_rest(tmp_path: Path) -> None:
    (tmp_path / "train_filtered.txt").write_text("jazz/jazz.00000.wav\njazz/jazz.00001.wav\n")
    (tmp_path / "valid_filtered.txt").write_text("rock/rock.00000.wav\n")
    (tmp_path / "test_filtered.txt").write_text("rock/rock.00001.wav\n")
    lists = read_split_lists(tmp_path)
    assert lists is not None
    track_ids = np.array(["jazz.00000"] * 3 + ["rock.00000"] * 2 + ["rock.00002"])
    split = split_by_lists(track_ids, lists)
    assert split.train.tolist() == [0, 1, 2]
    assert split.valid.tolist() == [3, 4]
    assert split.test.tolist() == []
    assert split.rows_outside == 1


def test_a_track_on_two_lists_is_refused(tmp_path: Path) -> None:
    (tmp_path / "train_filtered.txt").write_text("jazz/jazz.00000.wav\n")
    (tmp_path / "valid_filtered.txt").write_text("jazz/jazz.00000.wav\n")
    with pytest.raises(DataFormatError, match="also in train"):
        read_split_lists(tmp_path)
    assert read_split_lists(tmp_path / "absent") is None


def test_assert_grouped_catches_a_shared_group() -> None:
    split = Split(np.array([0, 1]), np.array([2]), np.array([], dtype=np.int64), "manual")
    with pytest.raises(ValueError, match="in both train and valid"):
        split.assert_grouped(np.array(["a", "b", "a"]))
