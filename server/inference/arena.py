"""A front-end's shared memory: where its requests' tensors wait for the inference process.

Each front-end owns one arena, an anonymous memory file (``memfd``) that it maps and hands to the
inference process once, over the Unix socket it connects with (SCM_RIGHTS). A request's rows are
written here once by the front-end and read in place by the inference process, which writes the
request's outputs back into the same slot (the front-end sizes every slot for both), so no tensor
crosses the socket: only a 32-byte record per request does. Nothing is ever named in the file
system, so nothing is left behind when a process dies.

Slots are handed out as a ring, in arrival order, and freed in any order: requests finish about
in the order they came, so the ring's free space stays whole. Only the front-end's event loop
allocates and frees, so there is no lock.
"""

from __future__ import annotations

import collections
import mmap
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ALIGNMENT = 64  # bytes: each slot starts on a cache line
FloatArray = npt.NDArray[np.float32]


@dataclass
class _Block:
    offset: int
    size: int
    freed: bool = False


class RingAllocator:
    """Offsets of ``size``-byte slots in ``capacity`` bytes; ``None`` when no room is left."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0 or capacity % ALIGNMENT:
            raise ValueError(f"capacity must be a positive multiple of {ALIGNMENT}")
        self.capacity = capacity
        self._blocks: collections.deque[_Block] = collections.deque()
        self._by_offset: dict[int, _Block] = {}
        self._head = 0  # where the next slot starts (the end of the newest one)
        self.used = 0  # bytes held by live slots

    def allocate(self, size: int) -> int | None:
        size = max(ALIGNMENT, -(-size // ALIGNMENT) * ALIGNMENT)
        if not self._blocks:
            self._head = 0
            offset: int | None = 0 if size <= self.capacity else None
        else:
            tail = self._blocks[0].offset
            if self._head > tail:  # live bytes are [tail, head): room at the end, then before
                if self._head + size <= self.capacity:
                    offset = self._head
                elif size <= tail:
                    offset = 0
                else:
                    offset = None
            else:  # wrapped: live bytes are [tail, end) and [0, head); room is [head, tail)
                offset = self._head if self._head + size <= tail else None
        if offset is None:
            return None
        block = _Block(offset, size)
        self._blocks.append(block)
        self._by_offset[offset] = block
        self._head = offset + size
        self.used += size
        return offset

    def free(self, offset: int) -> None:
        block = self._by_offset.pop(offset)
        block.freed = True
        self.used -= block.size
        while self._blocks and self._blocks[0].freed:
            self._blocks.popleft()

    @property
    def live(self) -> int:
        return len(self._by_offset)


class Arena:
    """The memory file, its mapping and its allocator; ``fd`` is what the inference process maps."""

    def __init__(self, capacity: int) -> None:
        capacity = -(-capacity // ALIGNMENT) * ALIGNMENT
        self.fd = os.memfd_create("genre-serve-arena", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, capacity)
        self.memory = mmap.mmap(self.fd, capacity)
        self.allocator = RingAllocator(capacity)

    @property
    def capacity(self) -> int:
        return self.allocator.capacity

    def put(self, rows: FloatArray, reserve: int) -> int | None:
        """Copies ``rows`` into a new slot of at least ``reserve`` bytes; its offset, or None."""
        offset = self.allocator.allocate(max(rows.nbytes, reserve))
        if offset is not None:
            view_of(self.memory, offset, rows.shape)[...] = rows
        return offset

    def take(self, offset: int, shape: tuple[int, ...]) -> FloatArray:
        """A copy of the float32 array of ``shape`` at ``offset``; the slot is freed."""
        result = view_of(self.memory, offset, shape).copy()
        self.allocator.free(offset)
        return result

    def free(self, offset: int) -> None:
        self.allocator.free(offset)

    def close(self) -> None:
        self.memory.close()
        os.close(self.fd)


def view_of(memory: mmap.mmap, offset: int, shape: tuple[int, ...]) -> FloatArray:
    """A float32 array of ``shape`` over ``memory`` at ``offset``, no copy (either process)."""
    return np.ndarray(shape, dtype=np.float32, buffer=memory, offset=offset)


def map_arena(fd: int, size: int) -> mmap.mmap:
    """The inference process's mapping of a front-end's arena (the descriptor is closed after:
    the mapping keeps the memory)."""
    try:
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)
