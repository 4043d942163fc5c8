"""One entry point for every feature dataset the trainer knows, by the name the CLI uses.

``--data`` conventions (also in ``training/README.md``): for ``gtzan30``/``gtzan3`` the CSV or a
directory holding ``features_30_sec.csv``/``features_3_sec.csv`` (directly or under ``gtzan/``);
for ``spotify11`` ``train.csv`` or a directory holding it (directly or under ``spotify_11class/``);
for ``spotify-tracks`` the ``dataset.csv`` file itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from training.features.gtzan_data import load_gtzan_features, resolve_gtzan_csv
from training.features.spotify_data import (
    DEFAULT_TRACKS_GENRES,
    load_spotify11,
    load_spotify_tracks,
    resolve_spotify11_csv,
)
from training.features.tabular import TabularDataset

DATASETS = ("gtzan30", "gtzan3", "spotify11", "spotify-tracks")


def load_dataset(
    name: str,
    data: Path,
    drop_bad_rows: bool = False,
    genres: Sequence[str] | None = None,
    conflicts: str = "drop",
) -> TabularDataset:
    """Loads dataset ``name`` from ``data``; ``genres`` applies to ``spotify-tracks`` only,
    ``conflicts`` (what to do with a track repeated under different labels) to the Spotify
    sets only: GTZAN has one row per excerpt."""
    if genres is not None and name != "spotify-tracks":
        raise ValueError("--genres selects genres of spotify-tracks only")
    if conflicts != "drop" and name.startswith("gtzan"):
        raise ValueError("--conflicts applies to the Spotify sets only")
    if name in ("gtzan30", "gtzan3"):
        path = resolve_gtzan_csv(data, name)
        return load_gtzan_features(path, segments=name == "gtzan3", drop_bad_rows=drop_bad_rows)
    if name == "spotify11":
        return load_spotify11(resolve_spotify11_csv(data), drop_bad_rows, conflicts)
    if name == "spotify-tracks":
        chosen = tuple(genres) if genres is not None else DEFAULT_TRACKS_GENRES
        return load_spotify_tracks(data, chosen, drop_bad_rows, conflicts)
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def fingerprint(files: Sequence[Path]) -> str:
    """sha256 over the names and sha256 digests of every file a model was trained from."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda item: item.name):
        digest.update(path.name.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode("ascii") + b"\n")
    return digest.hexdigest()
