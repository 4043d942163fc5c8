"""Small CSV files in the real layouts, written by tests into ``tmp_path``."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.features.gtzan_data import GTZAN_FEATURES, GTZAN_GENRES
from training.features.spotify_data import SPOTIFY11_CLASSES, SPOTIFY11_FEATURES, TRACKS_FEATURES

SPOTIFY11_HEADER = ["Artist Name", "Track Name", *SPOTIFY11_FEATURES, "Class"]
TRACKS_HEADER = ["", "track_id", "artists", "album_name", "track_name"]
TRACKS_HEADER += [*TRACKS_FEATURES, "track_genre"]


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def gtzan_rows(
    genres: Sequence[str] = GTZAN_GENRES,
    tracks_per_genre: int = 6,
    segments: int | None = None,
    seed: int = 0,
) -> list[list[object]]:
    """Rows whose features carry a learnable genre signal (a per-genre offset)."""
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = []
    for genre_index, genre in enumerate(genres):
        for number in range(tracks_per_genre):
            parts = [None] if segments is None else list(range(segments))
            for part in parts:
                stem = f"{genre}.{number:05d}"
                name = f"{stem}.wav" if part is None else f"{stem}.{part}.wav"
                values = rng.normal(size=len(GTZAN_FEATURES)) + genre_index
                values = np.abs(values) + 0.01  # variances must stay non-negative
                rows.append([name, 661794, *values.round(5).tolist(), genre])
    return rows


def write_gtzan(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    return write_csv(path, ["filename", "length", *GTZAN_FEATURES, "label"], rows)


def spotify11_row(
    artist: str, track: str, label: int, seed: int = 0, **overrides: object
) -> list[object]:
    rng = np.random.default_rng(seed)
    values: dict[str, object] = {
        "Popularity": float(rng.integers(0, 100)),
        "danceability": round(float(rng.random()) * 0.5 + label * 0.04, 4),
        "energy": round(float(rng.random()), 4),
        "key": float(rng.integers(0, 12)),
        "loudness": round(-20 * float(rng.random()), 3),
        "mode": int(rng.integers(0, 2)),
        "speechiness": round(float(rng.random()) * 0.3, 4),
        "acousticness": round(float(rng.random()), 4),
        "instrumentalness": round(float(rng.random()), 4),
        "liveness": round(float(rng.random()), 4),
        "valence": round(float(rng.random()), 4),
        "tempo": round(60 + 120 * float(rng.random()), 3),
        "duration_in min/ms": float(rng.integers(120_000, 360_000)),
        "time_signature": 4,
    }
    values.update(overrides)
    return [artist, track, *(values[name] for name in SPOTIFY11_FEATURES), label]


def spotify11_rows(artists: int = 24, tracks: int = 4) -> list[list[object]]:
    rows = []
    for artist in range(artists):
        label = artist % len(SPOTIFY11_CLASSES)
        for track in range(tracks):
            seed = artist * 100 + track
            rows.append(spotify11_row(f"Artist {artist}", f"Song {track}", label, seed))
    return rows


def tracks_row(
    track_id: str, artists: str, genre: str, seed: int = 0, **overrides: object
) -> list[object]:
    rng = np.random.default_rng(seed)
    values: dict[str, object] = {name: round(float(rng.random()), 4) for name in TRACKS_FEATURES}
    values.update(
        popularity=int(rng.integers(0, 100)),
        duration_ms=int(rng.integers(120_000, 360_000)),
        explicit="False",
        key=int(rng.integers(0, 12)),
        loudness=-5.0,
        mode=1,
        tempo=120.0,
        time_signature=4,
    )
    values.update(overrides)
    row: list[object] = [seed, track_id, artists, "Album", f"Track {track_id}"]
    return [*row, *(values[name] for name in TRACKS_FEATURES), genre]
