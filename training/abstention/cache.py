"""A disk cache of arrays computed from audio, keyed by what they were computed from.

Running the ensemble over a window costs about 30-45 ms on one CPU thread, and the codec round
trips multiply the windows by nine, so a re-run (another detector setting, a fixed report, the
study after training) would repeat an hour of work. Each entry's key is a sha256 over the
inputs' bytes (the model's genre tensors and every window), so a changed clip, codec or model
can never be served a stale entry. The directory is disposable and ignored by git.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

Arrays = dict[str, npt.NDArray[np.generic]]


def digest(parts: Iterable[bytes | str | npt.NDArray[np.generic]]) -> str:
    """sha256 over ``parts`` in order (arrays by their dtype, shape and bytes)."""
    hasher = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            contiguous = np.ascontiguousarray(part)
            hasher.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
            hasher.update(contiguous.data)
        else:
            hasher.update(part.encode() if isinstance(part, str) else part)
        hasher.update(b"\0")
    return hasher.hexdigest()


class ArrayCache:
    """``cached(kind, key, compute)``: the arrays ``compute`` returns, from disk when the same
    ``kind`` and ``key`` were computed before. ``directory=None`` caches nothing."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def cached(self, kind: str, key: str, compute: Callable[[], Arrays]) -> Arrays:
        if self.directory is None:
            return compute()
        path = self.directory / kind / f"{key}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as stored:
                return {name: stored[name] for name in stored.files}
        arrays = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, staged = tempfile.mkstemp(dir=path.parent, suffix=".npz.partial")
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)  # type: ignore[arg-type]
        os.replace(staged, path)  # atomic: a stopped run leaves no half-written entry
        return arrays
