"""Cuts PCM into chunks and, for live demos, feeds them at the pace the audio would play."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO


def chunk_size(bytes_per_second: int, frame_bytes: int, chunk_ms: float) -> int:
    """Bytes in ``chunk_ms`` of audio, rounded to whole frames (one sample of every channel),
    at least one frame. The server accepts chunks split anywhere; whole frames just keep the
    pacing exact."""
    if chunk_ms <= 0:
        raise ValueError(f"chunk_ms must be > 0, got {chunk_ms}")
    frames = round(bytes_per_second * chunk_ms / 1000 / frame_bytes)
    return max(frames, 1) * frame_bytes


def split_bytes(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` in consecutive pieces of ``size`` bytes (the last may be shorter)."""
    if size <= 0:
        raise ValueError(f"size must be > 0, got {size}")
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


def read_chunks(stream: BinaryIO, size: int) -> Iterator[bytes]:
    """Reads ``stream`` (stdin, a pipe, a file) in pieces of ``size`` bytes until EOF, lazily, so
    a live source streams as it arrives."""
    if size <= 0:
        raise ValueError(f"size must be > 0, got {size}")
    while chunk := stream.read(size):
        yield chunk


def paced(
    chunks: Iterable[bytes],
    bytes_per_second: float,
    *,
    realtime: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """Yields ``chunks`` no faster than the audio they hold would play.

    Each chunk waits until the audio before it has "played" since the first chunk, measured on
    one monotonic clock, so scheduling jitter does not accumulate into drift. With
    ``realtime=False`` the chunks pass straight through (as fast as the network takes them).
    """
    if bytes_per_second <= 0:
        raise ValueError(f"bytes_per_second must be > 0, got {bytes_per_second}")
    if not realtime:
        yield from chunks
        return
    start = clock()
    sent = 0
    for chunk in chunks:
        wait = start + sent / bytes_per_second - clock()
        if wait > 0:
            sleep(wait)
        yield chunk
        sent += len(chunk)
