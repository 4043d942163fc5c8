"""A one-line progress bar on stderr: done/total, files per second and an ETA.

Written here rather than taken from tqdm because the client is what other services install
(grpcio, protobuf, numpy; PyAV for files) and tqdm is only in the training extra; a bar this
small is not worth a dependency. It draws only on a terminal, at most ten times a second, so
logs and pipes get no carriage-return noise.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24
REDRAW_SECONDS = 0.1


def format_eta(seconds: float | None) -> str:
    """``H:MM:SS`` or ``M:SS``; ``--:--`` while the rate is unknown."""
    if seconds is None:
        return "--:--"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(
    done: int, total: int, elapsed: float, label: str = "files", note: str = ""
) -> str:
    """``[#####-----]  12/40 files  2.3 files/s  ETA 0:12`` (rate over the whole run so far,
    which is steadier than the last file's, as files differ in length)."""
    fraction = done / total if total else 1.0
    filled = round(BAR_WIDTH * fraction)
    rate = done / elapsed if elapsed > 0 and done else None
    eta = (total - done) / rate if rate else None
    speed = f"{rate:.1f}" if rate is not None else "-"
    line = (
        f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done}/{total} {label}"
        f"  {speed} {label}/s  ETA {format_eta(eta)}"
    )
    return f"{line}  {note}" if note else line


class ProgressBar:
    """Call :meth:`advance` per finished item and :meth:`close` once; ``enabled=None`` draws
    only when ``stream`` is a terminal."""

    def __init__(
        self,
        total: int,
        *,
        label: str = "files",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self.note = ""
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._clock = clock
        self._start = clock()
        self._drawn_at: float | None = None
        self._width = 0

    def advance(self, count: int = 1, note: str = "") -> None:
        self.done += count
        if note:
            self.note = note
        now = self._clock()
        due = self._drawn_at is None or now - self._drawn_at >= REDRAW_SECONDS
        if due or self.done >= self.total:
            self._draw(now)

    def close(self) -> None:
        if self._enabled and self._drawn_at is not None:
            self._draw(self._clock())
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self, now: float) -> None:
        if not self._enabled:
            return
        self._drawn_at = now
        line = progress_line(self.done, self.total, now - self._start, self._label, self.note)
        self._stream.write("\r" + line.ljust(self._width))
        self._stream.flush()
        self._width = len(line)
