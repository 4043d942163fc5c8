"""Chunking and real-time pacing, on a fake clock so the test takes no time."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from client.pacing import chunk_size, paced, read_chunks, split_bytes


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_chunk_size_is_whole_frames() -> None:
    assert chunk_size(22050 * 2, 2, 100) == 4410
    assert chunk_size(44100 * 2 * 4, 8, 10) == 3528
    assert chunk_size(8000 * 2, 2, 0.01) == 2
    with pytest.raises(ValueError, match="chunk_ms"):
        chunk_size(16000, 2, 0)


def test_split_and_read_keep_every_byte_in_order() -> None:
    data = bytes(range(256)) * 3
    assert b"".join(split_bytes(data, 100)) == data
    assert [len(c) for c in split_bytes(data, 300)] == [300, 300, 168]
    assert list(read_chunks(io.BytesIO(data), 500)) == [data[:500], data[500:]]


def test_paced_waits_for_the_audio_already_sent_to_play() -> None:
    clock = FakeClock()
    chunks = [b"x" * 100, b"x" * 100, b"x" * 50, b"x" * 10]

    out = list(paced(chunks, bytes_per_second=1000, clock=clock, sleep=clock.sleep))

    assert out == chunks
    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.05])


def test_paced_does_not_sleep_when_the_source_is_already_late() -> None:
    clock = FakeClock()

    def late() -> Iterator[bytes]:
        for _ in range(3):
            clock.now += 1.0
            yield b"x" * 10

    list(paced(late(), 1000, clock=clock, sleep=clock.sleep))
    assert clock.sleeps == []


def test_realtime_off_passes_straight_through() -> None:
    clock = FakeClock()
    assert list(paced([b"a", b"b"], 1, realtime=False, clock=clock, sleep=clock.sleep)) == [
        b"a",
        b"b",
    ]
    assert clock.sleeps == []
