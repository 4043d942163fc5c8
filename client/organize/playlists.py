"""Writes what ``genre-client organize`` produces: extended-M3U playlists, CSVs of Spotify track
URIs, and any text file, each replaced atomically.

Every file is written to a hidden temporary file beside it and renamed into place, so a player
(or a Ctrl-C, or a crash) never sees half a playlist: each file is the old complete one or the
new complete one.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

UNSORTED = "unsorted"
"""The playlist of files the model abstained on or placed below ``--min-probability``."""
RESERVED_STEMS = frozenset({UNSORTED, "report"})
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


@dataclass(frozen=True)
class Track:
    """One playlist entry: the file, its length (``None``: unknown, written as -1) and title."""

    path: Path
    seconds: float | None
    title: str


def file_stem(genre: str) -> str:
    """A file name for ``genre`` that is safe on every common file system.

    Path separators and characters Windows forbids become ``-`` (``Acoustic/Folk`` ->
    ``Acoustic-Folk``); a genre that would collide with ``unsorted`` or ``report`` gets a
    ``-genre`` suffix, so no genre can overwrite those files.
    """
    stem = _UNSAFE.sub("-", genre).strip(" .") or "genre"
    if stem.lower() in RESERVED_STEMS:
        stem += "-genre"
    return stem


def m3u8_text(tracks: Sequence[Track], playlist_dir: Path) -> str:
    """Extended M3U (UTF-8): ``#EXTM3U``, then per track ``#EXTINF:<seconds>,<title>`` and its
    path relative to ``playlist_dir`` with ``/`` separators, so the folder can move as a whole.

    Seconds are whole (rounded), as players of plain M3U expect; unknown lengths are -1.
    """
    lines = ["#EXTM3U"]
    for track in tracks:
        seconds = -1 if track.seconds is None else round(track.seconds)
        title = " ".join(track.title.split()) or track.path.stem
        relative = Path(os.path.relpath(track.path, playlist_dir)).as_posix()
        lines += [f"#EXTINF:{seconds},{title}", relative]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SpotifyTrack:
    """One row of a per-genre Spotify CSV."""

    uri: str
    name: str
    artists: str


SPOTIFY_CSV_COLUMNS = ("Track URI", "Track Name", "Artist Name(s)")
"""Import tools (Exportify's own format, Soundiiz, TuneMyMusic) read the ``Track URI`` column;
the names are there for people."""


def spotify_csv_text(tracks: Iterable[SpotifyTrack]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SPOTIFY_CSV_COLUMNS)
    for track in tracks:
        writer.writerow([track.uri, track.name, track.artists])
    return buffer.getvalue()


def write_atomic(path: Path, text: str) -> None:
    """Replaces ``path`` with ``text`` (UTF-8) in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_stale(out_dir: Path, written: Iterable[Path], candidates: Iterable[Path]) -> list[Path]:
    """Deletes ``candidates`` (playlists an earlier run wrote) that this run did not write, so a
    genre that lost its last track does not keep an old playlist. Returns what was removed."""
    keep = {path.resolve() for path in written}
    removed = []
    for path in sorted(set(candidates)):
        in_out_dir = path.parent.resolve() == out_dir.resolve()
        if in_out_dir and path.resolve() not in keep and path.is_file():
            path.unlink()
            removed.append(path)
    return removed
