"""A music library on disk for ``genre-client organize``: which files to classify, and the
``report.csv`` that records every answer so a second run only classifies what changed.

The report is the run's memory as well as its result: playlists are rebuilt from it on every run,
so a re-run that skips current files (same size and mtime as recorded) still writes complete
playlists, and a change of ``--min-probability`` re-sorts without classifying anything again.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPORT_NAME = "report.csv"
REPORT_COLUMNS = (
    "path",
    "genre",
    "probability",
    "abstention",
    "model",
    "version",
    "seconds",
    "size",
    "mtime_ns",
    "title",
    "error",
)
"""The issue's seven columns first, then what re-runs and playlists need: the file's size and
mtime when classified, its title (``#EXTINF``) and, for a file that failed, why."""
TEXT_COLUMNS = ("path", "genre", "abstention", "model", "version", "title", "error")

AUDIO_EXTENSIONS = frozenset(
    {
        ".mp3", ".m4a", ".aac", ".opus", ".ogg", ".oga", ".spx", ".webm", ".mka", ".wma",
        ".flac", ".wav", ".wave", ".rf64", ".w64", ".aif", ".aiff", ".aifc", ".au", ".snd",
        ".caf", ".wv", ".ape", ".mpc", ".tta", ".ac3", ".dsf", ".voc",
    }
)  # fmt: skip
"""Extensions of audio files FFmpeg (the PyAV wheel) decodes: MP3; AAC and ALAC in MP4 (.m4a)
or raw (.aac); Opus, Vorbis and Speex in Ogg; WebM and Matroska audio; WMA; FLAC; WAV, RF64 and
W64; AIFF; AU; CAF; WavPack; Monkey's Audio; Musepack; TTA; AC-3; DSD; VOC. Video containers
(.mp4, .mkv) are deliberately absent: a library's .mp4 is far more often a film than a song."""

UNSUPPORTED_AUDIO = {
    ".m4p": "AAC under Apple's FairPlay DRM",
    ".mid": "MIDI: notes for a synthesizer, not audio",
    ".midi": "MIDI: notes for a synthesizer, not audio",
}
"""Files a music library holds that no decoder here can turn into sound: reported as failed,
with a reason, rather than silently left out of every playlist."""


class OrganizeError(ValueError):
    """The run cannot start as asked (exit 2); the message names the file and what is wrong."""


@dataclass(frozen=True)
class ReportRow:
    """One file's line of ``report.csv``.

    ``size`` and ``mtime_ns`` are recorded for answers and for faults of the file itself (it
    cannot be decoded, the server refused its audio), so an unchanged file is not sent again;
    they stay empty when the server or the connection failed, so the next run tries again.
    """

    path: str
    genre: str = ""
    probability: float | None = None
    abstention: str = ""
    model: str = ""
    version: str = ""
    seconds: float | None = None
    size: int | None = None
    mtime_ns: int | None = None
    title: str = ""
    error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error)

    def is_current(self, size: int, mtime_ns: int, model: str, version: str = "") -> bool:
        """True when the file is unchanged since this row and the row answers for ``model``
        (and ``version``, when one was asked for)."""
        return (
            self.size == size
            and self.mtime_ns == mtime_ns
            and self.model == model
            and (not version or self.version == version)
        )

    def to_csv(self) -> dict[str, str]:
        cells = {
            "probability": "" if self.probability is None else f"{self.probability:.6f}",
            "seconds": "" if self.seconds is None else f"{self.seconds:.3f}",
            "size": "" if self.size is None else str(self.size),
            "mtime_ns": "" if self.mtime_ns is None else str(self.mtime_ns),
        }
        return {column: cells.get(column, str(getattr(self, column))) for column in REPORT_COLUMNS}


def read_report(path: Path) -> list[ReportRow]:
    """The rows of an earlier run's report; none when there is no report yet.

    Raises :class:`OrganizeError` naming the line and column of a malformed report (``--force``
    ignores the old report instead of reading it).
    """
    if not path.is_file():
        return []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [column for column in REPORT_COLUMNS if column not in header]
            if missing:
                raise OrganizeError(
                    f"{path}: not a report of genre-client organize (no column "
                    f"{', '.join(missing)}); move it away or pass --force"
                )
            return [_parse_row(path, number, record) for number, record in enumerate(reader, 2)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise OrganizeError(f"cannot read {path}: {error}") from error


def _parse_row(path: Path, line: int, record: Mapping[str, str | None]) -> ReportRow:
    cells = {name: (value or "").strip() for name, value in record.items() if name is not None}

    def number(column: str, kind: type[float] | type[int]) -> float | int | None:
        text = cells.get(column, "")
        if not text:
            return None
        try:
            value = kind(text)
        except ValueError:
            raise OrganizeError(
                f"{path}, line {line}, column {column!r}: {text!r} is not a number; "
                "pass --force to classify everything again"
            ) from None
        if not math.isfinite(value):
            raise OrganizeError(f"{path}, line {line}, column {column!r}: {text!r} is not finite")
        return value

    if not cells.get("path"):
        raise OrganizeError(f"{path}, line {line}: empty path")
    probability = number("probability", float)
    seconds = number("seconds", float)
    size = number("size", int)
    mtime_ns = number("mtime_ns", int)
    return ReportRow(
        **{column: cells.get(column, "") for column in TEXT_COLUMNS},
        probability=None if probability is None else float(probability),
        seconds=None if seconds is None else float(seconds),
        size=None if size is None else int(size),
        mtime_ns=None if mtime_ns is None else int(mtime_ns),
    )


def report_text(rows: Iterable[ReportRow]) -> str:
    """The report as CSV text, rows sorted by path so runs diff cleanly."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda row: row.path):
        writer.writerow(row.to_csv())
    return buffer.getvalue()


@dataclass(frozen=True)
class Library:
    """What a walk of the input directory found, every path absolute, sorted."""

    audio: tuple[Path, ...]
    unsupported: tuple[Path, ...]


def find_library(
    root: Path, extensions: frozenset[str] = AUDIO_EXTENSIONS, skip: Sequence[Path] = ()
) -> Library:
    """Audio files under ``root`` (recursively; hidden files and folders and the ``skip``
    folders, e.g. the output folder, left out), and files of formats nothing here decodes."""
    if not root.is_dir():
        raise OrganizeError(f"{root}: not a directory")
    skipped = {folder.resolve() for folder in skip}
    audio: list[Path] = []
    unsupported: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        here = Path(folder).resolve()
        subfolders[:] = sorted(
            name
            for name in subfolders
            if not name.startswith(".") and (here / name).resolve() not in skipped
        )
        for name in names:
            if name.startswith("."):
                continue
            suffix = Path(name).suffix.lower()
            if suffix in extensions:
                audio.append(here / name)
            elif suffix in UNSUPPORTED_AUDIO:
                unsupported.append(here / name)
    return Library(tuple(sorted(audio)), tuple(sorted(unsupported)))


def unsupported_reason(path: Path) -> str:
    kind = UNSUPPORTED_AUDIO.get(path.suffix.lower(), path.suffix)
    return f"cannot decode {path.suffix} ({kind})"
