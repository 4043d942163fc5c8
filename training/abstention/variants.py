"""Clips as callers send them: clean, and after the codec round trips of ``codecs``, described
by the ensemble window by window, with each table cached by what it was made from.

Training sees each track and each made clip clean and as ``lossy_copies`` copies, each through a
codec and bitrate drawn at random (``codecs.TRAINING_CODECS``); a clip and its copies share a
group, so the detector's cross-validation never scores a copy of a clip it fitted. Measurement
sees every clip in every codec of the study's list, one codec at a time, so a window table is
all that is kept of a codec's audio (the windows of nine copies of the valid list would not fit
in memory at once).

A table's cache key is a sha256 over the model's genre tensors, the hop, the codec of every clip
and the clips' samples, so a re-run (another detector setting, the study after training) skips
both the round trips and the ensemble, and any change to what a table is made from misses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.abstention.cache import Arrays, digest
from training.abstention.codecs import Codec, drawn, through
from training.abstention.descriptors import EnsembleWindows, WindowTable

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
CLEAN = "uncoded"
"""The label of the clips as made (or, for the shared music, as decoded from its files)."""
Extra = Callable[[list[FloatArray]], Arrays]
"""More arrays computed from a table's cut windows (one array per clip), cached with it."""


@dataclass(frozen=True)
class TrainingTable:
    """The windows of every clip and its lossy copies; ``group`` (W,) is the original clip's
    index, shared by its copies; ``copy`` (W,) is 0 for the clean clip."""

    table: WindowTable
    group: IntArray
    copy: IntArray

    def take(self, mask: npt.NDArray[np.bool_]) -> TrainingTable:
        return TrainingTable(self.table.take(mask), self.group[mask], self.copy[mask])

    def take_audible(self, silence_dbfs: float) -> TrainingTable:
        """The windows at or over the level under which the server calls a window silence."""
        return self.take(self.table.levels >= silence_dbfs)


def coded_table(
    windows: EnsembleWindows,
    clips: Sequence[FloatArray],
    codecs: Sequence[Codec | None],
    hop_seconds: float,
    progress: bool = False,
    desc: str = "",
    extra: tuple[str, Extra] | None = None,
) -> tuple[WindowTable, Arrays]:
    """Clip ``i`` after ``codecs[i]`` (None: as it is), cut at ``hop_seconds`` and described;
    with the named ``extra`` arrays of its windows. From the cache when made before."""
    labels = [CLEAN if codec is None else codec.label for codec in codecs]
    name = "" if extra is None else extra[0]
    key = digest([windows.fingerprint, repr(hop_seconds), name, *labels, *clips])

    def compute() -> Arrays:
        rate = windows.contract.sample_rate
        lossy = [(i, codec) for i, codec in enumerate(codecs) if codec is not None]
        sent = list(clips)
        coded = through(
            [clips[i] for i, _ in lossy], rate, [codec for _, codec in lossy], progress,
            f"{desc}: codecs",
        )  # fmt: skip
        for (i, _), samples in zip(lossy, coded, strict=True):
            sent[i] = samples
        cut = windows.cut(sent, hop_seconds)
        del sent
        arrays = windows.table_of(cut, progress, desc).to_arrays()
        if extra is not None:
            arrays.update(extra[1](cut))
        return arrays

    arrays = windows.cache.cached("tables", key, compute)
    return WindowTable.from_arrays(arrays), arrays


def training_table(
    windows: EnsembleWindows,
    clips: Sequence[FloatArray],
    hop_seconds: float,
    copies: int,
    rng: np.random.Generator,
    progress: bool,
    desc: str,
) -> TrainingTable:
    """The clips clean and ``copies`` times through a drawn codec, cut at ``hop_seconds``."""
    tables, copy_of = [], []
    for copy in range(copies + 1):
        codecs: list[Codec | None] = [None] * len(clips) if copy == 0 else [*drawn(len(clips), rng)]
        table, _ = coded_table(
            windows, clips, codecs, hop_seconds, progress, f"{desc} ({copy}/{copies})"
        )
        tables.append(table)
        copy_of.append(np.full(len(table.clip), copy))
    return TrainingTable(
        concatenate(tables),
        np.concatenate([table.clip for table in tables]).astype(np.int64),
        np.concatenate(copy_of).astype(np.int64),
    )


def concatenate(tables: Sequence[WindowTable]) -> WindowTable:
    """One table of several, clip indices renumbered to follow on."""
    sizes = [int(table.clip.max()) + 1 if len(table.clip) else 0 for table in tables]
    offsets = np.cumsum([0, *sizes])
    return WindowTable(
        probabilities=np.concatenate([t.probabilities for t in tables]),
        descriptors=np.concatenate([t.descriptors for t in tables]),
        levels=np.concatenate([t.levels for t in tables]),
        clip=np.concatenate([t.clip + offset for t, offset in zip(tables, offsets, strict=False)]),
    )


def variants(codecs: Sequence[Codec]) -> list[tuple[str, Codec | None]]:
    """``(label, codec)`` of the clean clips (``None``) and of each codec."""
    return [(CLEAN, None), *((codec.label, codec) for codec in codecs)]
