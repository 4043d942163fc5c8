"""The in-memory form of a labelled feature table, and the strict CSV reading all loaders share.

Every loader turns a CSV into a ``TabularDataset``: raw feature rows with NaN where a value is
missing, integer labels, and per-row track and group ids (the group is what must never straddle
a split: a track for GTZAN, an artist for the Spotify sets). Faulty rows are never skipped
silently: by default the first one raises ``DataFormatError`` naming file, line and column; with
``drop_bad_rows`` they are removed and counted per reason in the ``LoadReport``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

# Re-exported: every loader and its callers take the shared types from here with the table.
from training.common import DataFormatError as DataFormatError
from training.common import FloatArray as FloatArray
from training.common import IntArray as IntArray
from training.common import StrArray as StrArray


@dataclass(frozen=True)
class LoadReport:
    """What a loader read, kept and threw away, so no row disappears without a count."""

    rows_read: int
    rows_kept: int
    bad_rows_dropped: dict[str, int] = field(default_factory=dict)
    duplicates_removed: int = 0
    conflicting_duplicates_removed: int = 0
    rows_not_selected: int = 0
    conflicting_duplicates_kept: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "bad_rows_dropped": dict(sorted(self.bad_rows_dropped.items())),
            "duplicates_removed": self.duplicates_removed,
            "conflicting_duplicates_removed": self.conflicting_duplicates_removed,
            "rows_not_selected": self.rows_not_selected,
            "conflicting_duplicates_kept": self.conflicting_duplicates_kept,
        }

    def summary(self) -> str:
        dropped = sum(self.bad_rows_dropped.values())
        return (
            f"read {self.rows_read} rows, kept {self.rows_kept}; dropped {dropped} bad, "
            f"{self.duplicates_removed} identical duplicates, "
            f"{self.conflicting_duplicates_removed} conflicting duplicates, "
            f"{self.rows_not_selected} not selected; kept {self.conflicting_duplicates_kept} "
            "rows of tracks with conflicting labels"
        )


@dataclass(frozen=True)
class TabularDataset:
    """Rows ``(N, F)`` of raw features (NaN = missing) with labels and grouping ids ``(N,)``."""

    name: str
    features: FloatArray
    feature_names: tuple[str, ...]
    labels: IntArray
    label_names: tuple[str, ...]
    track_ids: StrArray
    groups: StrArray
    imputable: tuple[str, ...]
    files: tuple[Path, ...]
    report: LoadReport
    # Each row's track title ("" where it has none), for a title member; None: no titles.
    titles: StrArray | None = None

    def __post_init__(self) -> None:
        rows = self.features.shape[0]
        if self.titles is not None and len(self.titles) != rows:
            raise ValueError("titles need one entry per row")
        if self.features.ndim != 2 or self.features.shape[1] != len(self.feature_names):
            raise ValueError(f"features must be (N, {len(self.feature_names)})")
        if not (len(self.labels) == len(self.track_ids) == len(self.groups) == rows):
            raise ValueError("labels, track_ids and groups need one entry per row")
        if rows and (self.labels.min() < 0 or self.labels.max() >= len(self.label_names)):
            raise ValueError("labels must index label_names")
        unknown = set(self.imputable) - set(self.feature_names)
        if unknown:
            raise ValueError(f"imputable names unknown features {sorted(unknown)}")

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def subset(self, indices: npt.ArrayLike) -> TabularDataset:
        chosen = np.asarray(indices, dtype=np.int64)
        return TabularDataset(
            name=self.name,
            features=self.features[chosen],
            feature_names=self.feature_names,
            labels=self.labels[chosen],
            label_names=self.label_names,
            track_ids=self.track_ids[chosen],
            groups=self.groups[chosen],
            imputable=self.imputable,
            files=self.files,
            report=self.report,
            titles=None if self.titles is None else self.titles[chosen],
        )


class RowChecker:
    """Collects faulty rows of one table: raises on the first, or marks them to be dropped."""

    def __init__(self, path: Path, frame: pd.DataFrame, drop_bad_rows: bool) -> None:
        self.path = path
        self.frame = frame
        self.drop_bad_rows = drop_bad_rows
        self.bad = np.zeros(len(frame), dtype=bool)
        self.reasons: Counter[str] = Counter()

    def flag(self, rows: npt.NDArray[np.bool_], column: str, reason: str) -> None:
        """Rows where ``rows`` is true are bad because of ``column``; line 1 is the header."""
        rows = rows & ~self.bad
        count = int(rows.sum())
        if count == 0:
            return
        if not self.drop_bad_rows:
            first = int(np.flatnonzero(rows)[0])
            value = self.frame[column].iloc[first] if column in self.frame else ""
            more = f" (and {count - 1} more such rows)" if count > 1 else ""
            raise DataFormatError(
                f"{self.path}: line {first + 2}, column {column!r}: {reason}: {value!r}{more}; "
                "fix the file or pass --drop-bad-rows to drop and count such rows"
            )
        self.bad |= rows
        self.reasons[f"{column}: {reason}"] += count

    def numbers(self, column: str, allow_missing: bool = False) -> npt.NDArray[np.float64]:
        """Parses one column as finite floats; empty cells become NaN when ``allow_missing``."""
        raw = self.frame[column].str.strip()
        empty = (raw == "").to_numpy()
        parsed = np.array(
            pd.to_numeric(raw.where(~empty), errors="coerce"), dtype=np.float64, copy=True
        )
        unparseable = ~empty & ~np.isfinite(parsed)
        self.flag(unparseable, column, "not a finite number")
        if not allow_missing:
            self.flag(empty, column, "missing value")
        parsed[empty] = np.nan
        return parsed

    def text(self, column: str) -> npt.NDArray[np.str_]:
        """A required text column, stripped; empty cells are bad rows."""
        values = self.frame[column].str.strip()
        self.flag((values == "").to_numpy(), column, "missing value")
        result: StrArray = values.to_numpy(dtype=str)
        return result

    @property
    def keep(self) -> npt.NDArray[np.bool_]:
        return ~self.bad


def read_table(
    path: Path,
    required: Sequence[str],
    ignorable: Sequence[str] = (),
) -> pd.DataFrame:
    """Reads a CSV as text cells and insists on exactly the expected columns.

    Cells stay strings so that ``RowChecker`` can name the line and column of any bad value,
    instead of pandas guessing a dtype and turning a typo into NaN.
    """
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DataFormatError(f"{path}: not a readable CSV ({error})") from error
    columns = [str(column).strip() for column in frame.columns]
    frame.columns = pd.Index(columns)
    missing = [column for column in required if column not in columns]
    unexpected = [
        column
        for column in columns
        if column not in required and column not in ignorable and not column.startswith("Unnamed")
    ]
    if missing or unexpected:
        raise DataFormatError(
            f"{path}: wrong columns: missing {missing or 'none'}, unexpected {unexpected or 'none'}"
        )
    return frame.fillna("")


CONFLICT_POLICIES = ("drop", "keep")


def deduplicate(
    keys: npt.NDArray[np.str_], labels: IntArray, conflicts: str = "drop"
) -> tuple[npt.NDArray[np.bool_], int, int, int]:
    """Keeps the first of identical duplicates; a key (artist + track, or a track id) seen with
    two different labels is a track whose genre the data itself cannot decide.

    ``conflicts="drop"`` removes every row of such a key: the model learns the genre of tracks
    the data agrees on. ``"keep"`` keeps one row per distinct label, so the model learns the
    label distribution the data was collected with (the rows share their artist, so grouped
    splits keep them on one side). Returns the keep mask and the counts of identical rows
    removed, conflicting rows removed and conflicting rows kept.
    """
    if conflicts not in CONFLICT_POLICIES:
        raise ValueError(f"conflicts must be one of {CONFLICT_POLICIES}, got {conflicts!r}")
    frame = pd.DataFrame({"key": keys, "label": labels})
    conflicting = ambiguous_keys(keys, labels)
    if conflicts == "keep":
        keep = ~frame.duplicated(["key", "label"], keep="first").to_numpy()
        return keep, int((~keep).sum()), 0, int((keep & conflicting).sum())
    repeated = frame.duplicated("key", keep="first").to_numpy()
    keep = ~conflicting & ~repeated
    return keep, int((repeated & ~conflicting).sum()), int(conflicting.sum()), 0


def ambiguous_keys(keys: npt.NDArray[np.str_], labels: IntArray) -> npt.NDArray[np.bool_]:
    """Rows whose key appears with more than one label."""
    frame = pd.DataFrame({"key": keys, "label": labels})
    result: npt.NDArray[np.bool_] = (
        frame.groupby("key")["label"].transform("nunique").to_numpy() > 1
    )
    return result
