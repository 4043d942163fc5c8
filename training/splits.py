"""Train/valid/test partitions that never put one group (track or artist) on two sides.

GTZAN repeats artists and recordings, and its 3-s rows are ten slices of one track: a random
row split would test on what was trained on and inflate accuracy by ten points or more. So
GTZAN follows the fault-filtered, artist-disjoint lists when they exist, and otherwise splits by
track; the Spotify sets split by artist. Every split is a pure function of its inputs and seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.common import DataFormatError, IntArray, StrArray

SPLIT_NAMES = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    """Row indices of each part; ``test`` may be empty (GTZAN's test list is kept elsewhere)."""

    train: IntArray
    valid: IntArray
    test: IntArray
    method: str
    rows_outside: int = 0
    sources: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if len(self.train) == 0 or len(self.valid) == 0:
            raise ValueError("a split needs training and validation rows")
        parts = (self.train, self.valid, self.test)
        total = sum(len(part) for part in parts)
        if len(np.unique(np.concatenate(parts))) != total:
            raise ValueError("split parts overlap")

    def assert_grouped(self, groups: StrArray) -> None:
        """Raises if any group has rows in two parts."""
        seen = [set(groups[part].tolist()) for part in (self.train, self.valid, self.test)]
        for first in range(3):
            for second in range(first + 1, 3):
                shared = seen[first] & seen[second]
                if shared:
                    example = sorted(shared)[0]
                    raise ValueError(
                        f"{len(shared)} groups, e.g. {example!r}, are in both "
                        f"{SPLIT_NAMES[first]} and {SPLIT_NAMES[second]}"
                    )


def read_split_lists(directory: Path) -> dict[str, set[str]] | None:
    """``{part: {track id}}`` from ``{train,valid,test}_filtered.txt``; None when absent.

    Entries look like ``blues/blues.00029.wav``; the track id is ``blues.00029``.
    """
    paths = {part: directory / f"{part}_filtered.txt" for part in SPLIT_NAMES}
    if not paths["train"].is_file() or not paths["valid"].is_file():
        return None
    lists: dict[str, set[str]] = {}
    owner: dict[str, str] = {}
    for part, path in paths.items():
        entries: set[str] = set()
        if path.is_file():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                entry = line.strip()
                if not entry:
                    continue
                track = Path(entry).name.rsplit(".", 1)[0]
                if track in owner:
                    raise DataFormatError(f"{path}: line {number}: {track} also in {owner[track]}")
                owner[track] = part
                entries.add(track)
        lists[part] = entries
    return lists


def split_by_lists(track_ids: StrArray, lists: dict[str, set[str]]) -> Split:
    """Rows follow their track's list; rows of tracks on no list are left out and counted."""
    parts = []
    for part in SPLIT_NAMES:
        member = np.isin(track_ids, sorted(lists.get(part, set())))
        parts.append(np.flatnonzero(member).astype(np.int64))
    covered = sum(len(part) for part in parts)
    return Split(
        train=parts[0],
        valid=parts[1],
        test=parts[2],
        method="fault-filtered artist-disjoint lists (Kereliuk, Sturm & Larsen 2015)",
        rows_outside=len(track_ids) - covered,
    )


def group_split(groups: StrArray, valid_fraction: float, test_fraction: float, seed: int) -> Split:
    """Shuffles the distinct groups with ``seed`` and deals them out until each part holds
    about its fraction of rows (test first, then valid, the rest train)."""
    if not (
        0 < valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1
    ):
        raise ValueError("fractions must be in (0, 1) and sum to less than 1")
    unique, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    cumulative = np.cumsum(counts[order])
    total = len(groups)
    test_end = _groups_needed(cumulative, test_fraction * total)
    valid_end = max(
        test_end + 1, _groups_needed(cumulative, (test_fraction + valid_fraction) * total)
    )
    part_of_group = np.zeros(len(unique), dtype=np.int64)
    part_of_group[order[test_end:valid_end]] = 1
    part_of_group[order[:test_end]] = 2
    part_of_row = part_of_group[inverse]
    return Split(
        train=np.flatnonzero(part_of_row == 0).astype(np.int64),
        valid=np.flatnonzero(part_of_row == 1).astype(np.int64),
        test=np.flatnonzero(part_of_row == 2).astype(np.int64),
        method=f"grouped shuffle split (seed {seed})",
    )


def _groups_needed(cumulative: IntArray, rows: float) -> int:
    """How many shuffled groups it takes to hold at least ``rows`` rows."""
    if rows <= 0:
        return 0
    return min(int(np.searchsorted(cumulative, rows)) + 1, len(cumulative))


def genre_of(entry: str) -> str:
    """``blues/blues.00029.wav`` -> ``blues``."""
    return Path(entry).name.split(".", 1)[0]


def read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def deal_halves(entries: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """List entries dealt into two halves: each genre's shuffled by ``seed`` and split as evenly
    as they go (an odd genre gives its extra entry to the smaller half)."""
    rng = np.random.default_rng(seed)
    halves: tuple[list[str], list[str]] = ([], [])
    for genre in sorted({genre_of(entry) for entry in entries}):
        tracks = sorted(entry for entry in entries if genre_of(entry) == genre)
        order = [tracks[i] for i in rng.permutation(len(tracks))]
        first = (len(order) + (len(halves[0]) <= len(halves[1]))) // 2
        halves[0].extend(order[:first])
        halves[1].extend(order[first:])
    return halves
