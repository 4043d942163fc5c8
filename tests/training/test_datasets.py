"""Loaders on small files carrying every fault of the real data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.training.synthetic import (
    SPOTIFY11_HEADER,
    TRACKS_HEADER,
    gtzan_rows,
    spotify11_row,
    tracks_row,
    write_csv,
    write_gtzan,
)
from training.features.datasets import fingerprint, load_dataset
from training.features.gtzan_data import load_gtzan_features
from training.features.spotify_data import load_spotify11, load_spotify_tracks
from training.features.tabular import DataFormatError, ambiguous_keys


def test_gtzan30_rows_keep_track_ids(tmp_path: Path) -> None:
    path = write_gtzan(tmp_path / "features_30_sec.csv", gtzan_rows(tracks_per_genre=2))
    dataset = load_dataset("gtzan30", tmp_path)
    assert len(dataset) == 20
    assert dataset.track_ids[0] == "blues.00000"
    assert dataset.label_names[dataset.labels[-1]] == "rock"
    assert dataset.files == (path,)


def test_gtzan3_segments_group_to_their_track(tmp_path: Path) -> None:
    rows = gtzan_rows(genres=("jazz", "rock"), tracks_per_genre=2, segments=10)
    path = write_gtzan(tmp_path / "features_3_sec.csv", rows)
    dataset = load_gtzan_features(path, segments=True)
    assert len(dataset) == 40
    assert sorted(set(dataset.groups.tolist())) == [
        "jazz.00000",
        "jazz.00001",
        "rock.00000",
        "rock.00001",
    ]


def test_gtzan30_refuses_segment_names(tmp_path: Path) -> None:
    rows = gtzan_rows(tracks_per_genre=1, segments=1)
    path = write_gtzan(tmp_path / "x.csv", rows)
    with pytest.raises(DataFormatError, match=r"line 2, column 'filename'"):
        load_gtzan_features(path, segments=False)


def test_bad_number_names_file_line_and_column(tmp_path: Path) -> None:
    rows = gtzan_rows(tracks_per_genre=1)
    rows[3][4] = "1.2.3"
    path = write_gtzan(tmp_path / "bad.csv", rows)
    with pytest.raises(DataFormatError) as caught:
        load_gtzan_features(path, segments=False)
    message = str(caught.value)
    assert str(path) in message
    assert "line 5" in message
    assert "'rms_mean'" in message
    assert "1.2.3" in message


def test_unknown_label_is_an_error_or_dropped_and_counted(tmp_path: Path) -> None:
    rows = gtzan_rows(tracks_per_genre=1)
    rows[0][-1] = "polka"
    path = write_gtzan(tmp_path / "bad.csv", rows)
    with pytest.raises(DataFormatError, match=r"line 2, column 'label': unknown label"):
        load_gtzan_features(path, segments=False)
    rows[1][6] = ""
    write_gtzan(path, rows)
    dataset = load_gtzan_features(path, segments=False, drop_bad_rows=True)
    assert len(dataset) == 8
    assert dataset.report.rows_read == 10
    assert dataset.report.bad_rows_dropped == {
        "label: unknown label (expected one of blues, classical, country, disco, hiphop, "
        "jazz, metal, pop, reggae, rock)": 1,
        "spectral_centroid_mean: missing value": 1,
    }


def test_wrong_columns_are_refused_with_their_names(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["filename", "tempo", "colour", "label"], [])
    with pytest.raises(DataFormatError, match=r"wrong columns: missing \['chroma_stft_mean'"):
        load_gtzan_features(path, segments=False)
    spotify = write_csv(tmp_path / "s.csv", [*SPOTIFY11_HEADER, "extra"], [])
    with pytest.raises(DataFormatError, match=r"unexpected \['extra'\]"):
        load_spotify11(spotify)


def test_spotify11_faults(tmp_path: Path) -> None:
    rows = [
        spotify11_row("A", "One", 1, 1, Popularity="", key="", instrumentalness=""),
        spotify11_row("A", "Two", 1, 2, **{"duration_in min/ms": 3.5}),
        spotify11_row("B", "Same", 2, 3),
        spotify11_row("b ", "same", 2, 4),  # identical repeat (case and space differ)
        spotify11_row("C", "Clash", 3, 5),
        spotify11_row("C", "Clash", 4, 6),  # conflicting repeat: both go
        spotify11_row("D", "Fine", 10, 7),
    ]
    path = write_csv(tmp_path / "train.csv", SPOTIFY11_HEADER, rows)
    dataset = load_spotify11(path)
    assert len(dataset) == 4
    assert dataset.report.duplicates_removed == 1
    assert dataset.report.conflicting_duplicates_removed == 2
    first = dataset.features[0]
    assert all(math.isnan(first[dataset.feature_names.index(n)]) for n in dataset.imputable)
    minutes = dataset.features[1, dataset.feature_names.index("duration_in min/ms")]
    assert minutes == pytest.approx(3.5)  # repaired by the preprocessor, not the loader
    assert sorted(set(dataset.groups.tolist())) == ["a", "b", "d"]


def test_spotify11_conflicts_kept_once_per_label_on_request(tmp_path: Path) -> None:
    rows = [
        spotify11_row("C", "Clash", 3, 5),
        spotify11_row("c", "clash ", 4, 6),  # same track, another label: kept
        spotify11_row("C", "Clash", 4, 7),  # that label again: an identical repeat
        spotify11_row("D", "Fine", 10, 8),
    ]
    path = write_csv(tmp_path / "train.csv", SPOTIFY11_HEADER, rows)
    assert len(load_spotify11(path)) == 1
    dataset = load_spotify11(path, conflicts="keep")
    assert sorted(dataset.labels.tolist()) == [3, 4, 10]
    assert dataset.report.conflicting_duplicates_kept == 2
    assert dataset.report.duplicates_removed == 1
    assert dataset.report.conflicting_duplicates_removed == 0
    assert dataset.groups.tolist().count("c") == 2  # one artist: one side of any split
    assert ambiguous_keys(dataset.track_ids, dataset.labels).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="conflicts must be one of"):
        load_spotify11(path, conflicts="vote")
    with pytest.raises(ValueError, match="Spotify sets only"):
        load_dataset("gtzan30", path, conflicts="keep")


def test_spotify11_missing_required_value_and_unknown_class(tmp_path: Path) -> None:
    rows = [spotify11_row("A", "One", 1, 1, energy=""), spotify11_row("B", "Two", 11, 2)]
    path = write_csv(tmp_path / "train.csv", SPOTIFY11_HEADER, rows)
    with pytest.raises(DataFormatError, match=r"line 2, column 'energy': missing value"):
        load_spotify11(path)
    dataset = load_spotify11(path, drop_bad_rows=True)
    assert len(dataset) == 0
    assert dataset.report.bad_rows_dropped == {
        "energy: missing value": 1,
        "Class: unknown label (expected 0-10)": 1,
    }


def test_spotify_tracks_selects_genres_and_deduplicates(tmp_path: Path) -> None:
    rows = [
        tracks_row("t1", "Ann;Bob", "pop", 1),
        tracks_row("t1", "Ann;Bob", "pop", 2),  # identical repeat
        tracks_row("t2", "Cid", "pop", 3),
        tracks_row("t2", "Cid", "edm", 4),  # conflicting within the subset: dropped
        tracks_row("t3", "Dee", "edm", 5),
        tracks_row("t4", "Eve", "jazz", 6),  # not selected
        tracks_row("t5", "Fay", "edm", 7, explicit="True"),
    ]
    path = write_csv(tmp_path / "dataset.csv", TRACKS_HEADER, rows)
    kept = load_spotify_tracks(path, genres=("edm", "pop"), conflicts="keep")
    assert sorted(kept.track_ids.tolist()) == ["t1", "t2", "t2", "t3", "t5"]
    dataset = load_spotify_tracks(path, genres=("edm", "pop"))
    assert dataset.label_names == ("edm", "pop")
    assert sorted(dataset.track_ids.tolist()) == ["t1", "t3", "t5"]
    assert dataset.report.rows_read == 7
    assert dataset.report.rows_not_selected == 1
    assert dataset.report.duplicates_removed == 1
    assert dataset.report.conflicting_duplicates_removed == 2
    assert "ann" in dataset.groups.tolist()
    explicit = dataset.features[:, dataset.feature_names.index("explicit")]
    assert sorted(explicit.tolist()) == [0.0, 0.0, 1.0]
    with pytest.raises(DataFormatError, match="never holds"):
        load_spotify_tracks(path, genres=("edm", "classical"))


def test_spotify_tracks_bad_boolean(tmp_path: Path) -> None:
    rows = [tracks_row("t1", "Ann", "pop", 1, explicit="maybe"), tracks_row("t2", "B", "edm")]
    path = write_csv(tmp_path / "dataset.csv", TRACKS_HEADER, rows)
    with pytest.raises(DataFormatError, match=r"line 2, column 'explicit': not a boolean"):
        load_dataset("spotify-tracks", path, genres=["pop", "edm"])


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    path = write_gtzan(tmp_path / "a.csv", gtzan_rows(tracks_per_genre=1))
    before = fingerprint([path])
    path.write_text(path.read_text() + "\n")
    assert fingerprint([path]) != before
    assert np.char.str_len(np.array([before])).item() == 64
