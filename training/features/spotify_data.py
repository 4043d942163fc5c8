"""Loaders for the two Spotify audio-feature layouts.

``spotify11``: the MachineHack 11-class set (``Artist Name, Track Name, Popularity, ...,
duration_in min/ms, time_signature, Class``). Popularity, key and instrumentalness may be
missing (NaN, imputed later by the fitted preprocessor); ``duration_in min/ms`` holds minutes on
some rows and is repaired by the preprocessor, not here, so the server repairs the same way.

``spotify-tracks``: the 114-genre Spotify Tracks layout (``track_id, artists, ...,
track_genre``), from which a genre subset is selected.

Both are de-duplicated (identical repeats keep their first row; conflicting repeats are dropped
entirely, or with ``conflicts="keep"`` kept once per label; see
``training.features.tabular.deduplicate``) and grouped by artist, so that a split learns genres
rather than artists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from training.features.tabular import (
    DataFormatError,
    IntArray,
    LoadReport,
    RowChecker,
    StrArray,
    TabularDataset,
    deduplicate,
    read_table,
)

SPOTIFY11_CLASSES = (
    "Acoustic/Folk",
    "Alt_Music",
    "Blues",
    "Bollywood",
    "Country",
    "HipHop",
    "Indie Alt",
    "Instrumental",
    "Metal",
    "Pop",
    "Rock",
)
SPOTIFY11_FEATURES = (
    "Popularity",
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "duration_in min/ms",
    "time_signature",
)
SPOTIFY11_IMPUTABLE = ("Popularity", "key", "instrumentalness")

TRACKS_FEATURES = (
    "popularity",
    "duration_ms",
    "explicit",
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "time_signature",
)
TRACKS_TEXT = ("track_id", "artists", "album_name", "track_name")
DEFAULT_TRACKS_GENRES = ("acoustic", "classical", "country", "edm", "hip-hop", "pop", "r-n-b")
_BOOLEANS = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0}


def resolve_spotify11_csv(data: Path) -> Path:
    """``--data`` may be ``train.csv``, its directory, or the shared data directory."""
    if data.is_file():
        return data
    for candidate in (data / "train.csv", data / "spotify_11class" / "train.csv"):
        if candidate.is_file():
            return candidate
    raise DataFormatError(f"{data}: neither a CSV file nor a directory holding train.csv")


def spotify11_class_names(train_csv: Path) -> tuple[str, ...]:
    """Class names by index, checked against ``sample_submission.csv`` when it lies beside."""
    submission = train_csv.parent / "sample_submission.csv"
    if not submission.is_file():
        return SPOTIFY11_CLASSES
    header = submission.read_text(encoding="utf-8").splitlines()[0].split(",")
    names = tuple(column.strip().rsplit("_", 1)[0] for column in header)
    if names != SPOTIFY11_CLASSES:
        raise DataFormatError(f"{submission}: class header {names} is not the expected 11 classes")
    return names


def load_spotify11(
    path: Path, drop_bad_rows: bool = False, conflicts: str = "drop"
) -> TabularDataset:
    label_names = spotify11_class_names(path)
    frame = read_table(path, ("Artist Name", "Track Name", *SPOTIFY11_FEATURES, "Class"))
    checker = RowChecker(path, frame, drop_bad_rows)
    artists = checker.text("Artist Name")
    tracks = checker.text("Track Name")
    columns = [
        checker.numbers(name, allow_missing=name in SPOTIFY11_IMPUTABLE)
        for name in SPOTIFY11_FEATURES
    ]
    raw_labels = checker.numbers("Class")
    known = np.isin(raw_labels, np.arange(len(label_names)))
    checker.flag(~known & ~np.isnan(raw_labels), "Class", "unknown label (expected 0-10)")
    labels = np.where(known, raw_labels, 0).astype(np.int64)
    artist_keys = np.char.lower(artists.astype(str))
    keys = np.array([f"{a}\t{t.lower()}" for a, t in zip(artist_keys, tracks, strict=True)])
    return _finish(
        name="spotify11",
        checker=checker,
        features=np.stack(columns, axis=1),
        feature_names=SPOTIFY11_FEATURES,
        labels=labels,
        label_names=label_names,
        dedup_keys=keys,
        groups=artist_keys,
        imputable=SPOTIFY11_IMPUTABLE,
        files=(path, path.parent / "sample_submission.csv"),
        conflicts=conflicts,
        titles=tracks,
    )


def load_spotify_tracks(
    path: Path,
    genres: Sequence[str] = DEFAULT_TRACKS_GENRES,
    drop_bad_rows: bool = False,
    conflicts: str = "drop",
) -> TabularDataset:
    """Selects ``genres`` (their order is the class order) and de-duplicates by ``track_id``."""
    if len(set(genres)) != len(genres) or len(genres) < 2:
        raise ValueError("choose at least two distinct genres")
    frame = read_table(path, (*TRACKS_TEXT, *TRACKS_FEATURES, "track_genre"))
    present = set(frame["track_genre"].str.strip())
    absent = [genre for genre in genres if genre not in present]
    if absent:
        raise DataFormatError(f"{path}: column 'track_genre' never holds {absent}")
    selected = frame["track_genre"].str.strip().isin(list(genres)).to_numpy()
    frame = frame[selected].reset_index(drop=True)
    checker = RowChecker(path, frame, drop_bad_rows)
    track_ids = checker.text("track_id")
    artists = checker.text("artists")
    columns = []
    for name in TRACKS_FEATURES:
        if name == "explicit":
            text = frame[name].str.strip().str.lower()
            known = text.isin(list(_BOOLEANS)).to_numpy()
            checker.flag(~known, name, "not a boolean")
            columns.append(text.map(_BOOLEANS).to_numpy(dtype=np.float64))
        else:
            columns.append(checker.numbers(name))
    genre_index = {genre: position for position, genre in enumerate(genres)}
    labels = np.array([genre_index[g.strip()] for g in frame["track_genre"]], dtype=np.int64)
    first_artists = np.array([a.split(";")[0].strip().lower() for a in artists], dtype=str)
    dataset = _finish(
        name="spotify-tracks",
        checker=checker,
        features=np.stack(columns, axis=1),
        feature_names=TRACKS_FEATURES,
        labels=labels,
        label_names=tuple(genres),
        dedup_keys=track_ids,
        groups=first_artists,
        imputable=("popularity", "key", "instrumentalness"),
        files=(path,),
        conflicts=conflicts,
    )
    not_selected = int((~selected).sum())
    report = replace(
        dataset.report,
        rows_read=dataset.report.rows_read + not_selected,
        rows_not_selected=not_selected,
    )
    return replace(dataset, report=report)


def _finish(
    *,
    name: str,
    checker: RowChecker,
    features: npt.NDArray[np.float64],
    feature_names: tuple[str, ...],
    labels: IntArray,
    label_names: tuple[str, ...],
    dedup_keys: StrArray,
    groups: StrArray,
    imputable: tuple[str, ...],
    files: tuple[Path, ...],
    conflicts: str,
    titles: StrArray | None = None,
) -> TabularDataset:
    """Drops bad rows, then duplicates among the good ones, and records both counts."""
    good = checker.keep
    keep_good, identical, conflicting, kept = deduplicate(dedup_keys[good], labels[good], conflicts)
    keep = np.zeros_like(good)
    keep[np.flatnonzero(good)[keep_good]] = True
    report = LoadReport(
        rows_read=len(checker.frame),
        rows_kept=int(keep.sum()),
        bad_rows_dropped=dict(checker.reasons),
        duplicates_removed=identical,
        conflicting_duplicates_removed=conflicting,
        conflicting_duplicates_kept=kept,
    )
    return TabularDataset(
        name=name,
        features=features[keep].astype(np.float32),
        feature_names=feature_names,
        labels=labels[keep],
        label_names=label_names,
        track_ids=np.asarray(dedup_keys[keep], dtype=str),
        groups=np.asarray(groups[keep], dtype=str),
        imputable=imputable,
        files=tuple(file for file in files if file.is_file()),
        report=report,
        titles=None if titles is None else np.asarray(titles[keep], dtype=str),
    )
