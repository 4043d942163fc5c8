"""Streamed PCM -> mono float samples -> fixed windows, independent of how the bytes were chunked.

A chunk may end anywhere, even inside a sample or between the channels of one frame; the decoder
carries the incomplete frame over to the next chunk. ``WindowCutter`` keeps a bounded buffer of
samples and cuts windows at fixed positions (multiples of the hop), so the same audio yields the
same windows whether it came in 1-byte chunks or in one piece.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genre.v1 import genre_pb2
from server.errors import InvalidArgument

FloatArray = npt.NDArray[np.float32]
# The encodings a stream may declare, and their sample types: the one list of them.
SAMPLE_TYPES: dict[int, np.dtype[np.generic]] = {
    int(genre_pb2.PCM_S16LE): np.dtype("<i2"),
    int(genre_pb2.PCM_F32LE): np.dtype("<f4"),
}


class PcmDecoder:
    """Interleaved PCM bytes -> mono float32 in [-1, 1], carrying incomplete frames over."""

    def __init__(self, encoding: int, channels: int) -> None:
        if encoding not in SAMPLE_TYPES:
            raise ValueError(f"unsupported encoding {encoding}")
        self._dtype = SAMPLE_TYPES[encoding]
        self._channels = channels
        self._frame_bytes = self._dtype.itemsize * channels
        self._carry = b""

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest of it."""
        return len(self._carry)

    def decode(self, data: bytes) -> FloatArray:
        if self._carry:
            data = self._carry + data
        usable = len(data) - len(data) % self._frame_bytes
        self._carry = data[usable:]
        if usable == 0:
            return np.zeros(0, dtype=np.float32)
        raw = np.frombuffer(data, dtype=self._dtype, count=usable // self._dtype.itemsize)
        if self._dtype.kind == "i":
            samples = raw.astype(np.float32) / np.float32(32768.0)
        else:
            samples = raw.astype(np.float32)
            if not np.isfinite(samples).all():
                raise InvalidArgument("audio.data: PCM_F32LE samples must be finite")
        if self._channels > 1:
            samples = samples.reshape(-1, self._channels).mean(axis=1, dtype=np.float32)
        mono: FloatArray = samples
        return mono


@dataclass(frozen=True)
class Window:
    """One window of samples at the stream's rate, ``start`` samples from the stream's start."""

    start: int
    samples: FloatArray


class WindowCutter:
    """Cuts ``window``-sample windows every ``hop`` samples from a stream of sample blocks.

    Keeps the last ``window`` samples (for a final window flush with the end, as training covers
    a track's tail) and whatever the next window still needs; older samples are dropped as
    windows are cut. Dropping only moves a start index: the kept samples are moved to the front
    of the buffer once the free space behind them runs out, about once per ``window + hop`` of
    audio, rather than on every block. With 100 ms chunks and a 3 s window, moving them on every
    message was a 260 KB copy ten times a second per stream, most of what a message cost.
    """

    def __init__(self, window: int, hop: int, max_block: int) -> None:
        if window <= 0 or hop <= 0 or max_block <= 0:
            raise ValueError("window, hop and max_block must be positive")
        self._window = window
        self._hop = hop
        self._max_block = max_block
        # Kept samples never exceed window + hop; the room behind them, twice that, is what makes
        # moves rare. Pages past what a stream's blocks reach are never touched.
        self._data = np.zeros(2 * (window + hop) + max_block, dtype=np.float32)
        self._start = 0  # index in _data of the oldest kept sample
        self._end = 0  # index in _data just past the newest sample
        self._offset = 0  # stream position of _data[_start]
        self._next_start = 0
        self.total = 0  # samples received so far

    @property
    def windows_cut(self) -> int:
        return self._next_start // self._hop

    def push(self, block: FloatArray) -> list[Window]:
        if block.size > self._max_block:
            raise ValueError("block larger than the buffer was sized for")
        if self._end + block.size > 2 * (self._window + self._hop) or (
            self._end + block.size > self._data.size
        ):
            self._compact()
        self._data[self._end : self._end + block.size] = block
        self._end += block.size
        self.total += block.size
        windows: list[Window] = []
        while self._next_start + self._window <= self.total:
            begin = self._start + self._next_start - self._offset
            windows.append(
                Window(self._next_start, self._data[begin : begin + self._window].copy())
            )
            self._next_start += self._hop
        self._drop_before(min(self._next_start, max(self.total - self._window, 0)))
        return windows

    def tail(self) -> Window | None:
        """A window flush with the end when audio after the last cut window is uncovered."""
        if self.windows_cut == 0:
            return None
        last_end = self._next_start - self._hop + self._window
        if self.total <= last_end:
            return None
        start = self.total - self._window
        begin = self._start + start - self._offset
        return Window(start, self._data[begin : begin + self._window].copy())

    def remainder(self) -> Window:
        """The audio not yet covered by a full window, from the next window's start."""
        begin = self._start + max(self._next_start - self._offset, 0)
        return Window(self._next_start, self._data[begin : self._end].copy())

    def _drop_before(self, position: int) -> None:
        drop = position - self._offset
        if drop > 0:
            self._start += drop
            self._offset = position

    def _compact(self) -> None:
        kept = self._end - self._start
        if self._start:
            self._data[:kept] = self._data[self._start : self._end]
        self._start, self._end = 0, kept
