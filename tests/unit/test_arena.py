"""The front-end's shared memory: ring slots freed in any order, arrays in and out intact."""

from __future__ import annotations

import numpy as np
import pytest

from server.inference.arena import ALIGNMENT, Arena, RingAllocator, view_of
from server.inference.messages import (
    DONE_RECORD,
    SUBMIT,
    SUBMIT_RECORD,
    FrameReader,
    done_frame,
    error_messages,
    hello,
    read_hello,
    read_records,
    records_frame,
)


def test_slots_are_aligned_and_do_not_overlap() -> None:
    ring = RingAllocator(1024)
    offsets = [ring.allocate(size) for size in (10, 64, 100)]
    assert offsets == [0, 64, 128]
    assert all(offset is not None and offset % ALIGNMENT == 0 for offset in offsets)
    assert ring.used == 64 + 64 + 128


def test_a_full_ring_refuses_then_wraps_once_the_oldest_slots_are_free() -> None:
    ring = RingAllocator(256)
    first, second, third, fourth = (ring.allocate(64) for _ in range(4))
    assert first is not None
    assert second is not None
    assert third is not None
    assert fourth is not None
    assert ring.allocate(64) is None
    ring.free(second)  # out of order: the tail cannot move past the first yet
    assert ring.allocate(64) is None
    ring.free(first)  # now the first two slots are free: the next one wraps to 0
    assert ring.allocate(128) == 0
    assert ring.allocate(64) is None  # [128, 256) is still held by the third and fourth
    ring.free(third)
    ring.free(fourth)
    assert ring.allocate(64) == 128


def test_an_emptied_ring_starts_again_at_zero() -> None:
    ring = RingAllocator(256)
    offset = ring.allocate(200)
    assert offset == 0
    ring.free(offset)
    assert ring.live == 0
    assert ring.allocate(256) == 0


def test_a_slot_larger_than_the_ring_is_refused() -> None:
    assert RingAllocator(128).allocate(129) is None


def test_rows_go_in_and_outputs_come_back_through_the_same_slot() -> None:
    arena = Arena(4096)
    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    offset = arena.put(rows, reserve=3 * 5 * 4)  # outputs are wider than the inputs here
    assert offset is not None
    np.testing.assert_array_equal(view_of(arena.memory, offset, (3, 4)), rows)
    view_of(arena.memory, offset, (3, 5))[...] = 7.0  # what the inference process writes
    outputs = arena.take(offset, (3, 5))
    assert outputs.shape == (3, 5)
    assert (outputs == 7.0).all()
    assert arena.allocator.live == 0
    arena.close()


def test_frames_survive_any_cut_of_the_byte_stream() -> None:
    traced = (0x4BF92F3577B34DA6, 0xA3CE929D0E0E4736, 0x00F067AA0BA902B7, 1)  # W3C's example
    records = [
        (7, 3, 128, 1, 57, 256, float("nan"), 0, 0, 0, 0),
        (8, 3, 384, 2, 57, 512, 12.5, *traced),
    ]
    stream = records_frame(SUBMIT, records, SUBMIT_RECORD) + done_frame(
        [(7, 0, 3, 10, 0.001), (8, 8, 0, 0, 0.0)], {8: "queue full"}
    )
    for cut in range(1, len(stream)):
        seen: list[tuple[bytes, bytes]] = []

        def keep(kind: bytes, body: memoryview, into: list[tuple[bytes, bytes]] = seen) -> None:
            into.append((kind, bytes(body)))

        reader = FrameReader(keep)
        reader.feed(stream[:cut])
        reader.feed(stream[cut:])
        assert [kind for kind, _ in seen] == [b"S", b"D"]
        submitted, rest = read_records(memoryview(seen[0][1]), SUBMIT_RECORD)
        assert submitted[1] == records[1]
        assert np.isnan(submitted[0][6])
        assert rest == b""
        done, tail = read_records(memoryview(seen[1][1]), DONE_RECORD)
        assert [record[0] for record in done] == [7, 8]
        assert error_messages(tail) == {8: "queue full"}


def test_a_hello_from_another_version_is_refused() -> None:
    assert read_hello(hello(3, 1 << 20)) == (3, 1 << 20)
    forged = bytearray(hello(3, 1 << 20))
    forged[5:9] = b"XXXX"
    with pytest.raises(ValueError, match="not a hello"):
        read_hello(bytes(forged))
