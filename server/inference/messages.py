"""What front-ends and the inference process say to each other over their Unix socket.

Every message is a frame: a little-endian u32 length, one byte of kind, then the body. Requests
and completions travel as arrays of fixed records (numpy structured dtypes, parsed in one call),
one frame per batch of them, so a busy front-end wakes the inference process once per batch of
calls and is woken once per batch of answers. The tensors themselves stay in the front-end's
shared-memory arena (``server.inference.arena``); a record says where. The model table, which
changes only on reloads, is JSON.

- front-end -> inference: ``HELLO`` (once, with the arena's descriptor), ``SUBMIT`` records,
  ``ACK`` (the table generation the front-end now resolves against), ``RELOAD`` (SIGHUP reached
  a front-end).
- inference -> front-end: ``TABLE`` (JSON), ``DONE`` records, then, for failed ones, a JSON map
  from request id to message.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

HELLO, SUBMIT, ACK, RELOAD = b"H", b"S", b"A", b"R"
TABLE, DONE = b"T", b"D"
FRAME_HEADER = struct.Struct("<Ic")
HELLO_BODY = struct.Struct("<4sIIQ")  # magic, protocol version, worker index, arena bytes
MAGIC, PROTOCOL_VERSION = b"GSIP", 2
COUNT = struct.Struct("<I")
GENERATION = struct.Struct("<Q")
MAX_FRAME_BYTES = 64 * 1024 * 1024

# One request: which version, where its rows are in the arena, until when it is worth doing, and
# the caller's span when the call is traced (zeros when not), so the inference process's spans
# join the call's trace (``server.tracing.context``).
SUBMIT_RECORD = np.dtype(
    [
        ("id", "<u4"),
        ("version", "<u4"),
        ("offset", "<u8"),
        ("rows", "<u4"),
        ("columns", "<u4"),
        ("capacity", "<u8"),  # the slot's bytes: room for the outputs too
        ("deadline", "<f8"),  # time.monotonic() on this host; NaN: none
        ("trace_high", "<u8"),  # the W3C trace id, high and low 64 bits
        ("trace_low", "<u8"),
        ("span_id", "<u8"),  # the call's span
        ("trace_flags", "<u4"),
    ]
)
# One answer: OK (0) or a gRPC status code; the outputs are in the request's slot.
DONE_RECORD = np.dtype(
    [
        ("id", "<u4"),
        ("status", "<u4"),
        ("batch_rows", "<u4"),
        ("columns", "<u4"),
        ("queue_seconds", "<f8"),
    ]
)


def frame(kind: bytes, body: bytes = b"") -> bytes:
    return FRAME_HEADER.pack(len(body) + 1, kind) + body


def hello(worker: int, arena_bytes: int) -> bytes:
    return frame(HELLO, HELLO_BODY.pack(MAGIC, PROTOCOL_VERSION, worker, arena_bytes))


def read_hello(data: bytes) -> tuple[int, int]:
    """The worker index and arena size of a ``HELLO`` frame; ValueError for anything else."""
    if len(data) != FRAME_HEADER.size + HELLO_BODY.size:
        raise ValueError(f"hello of {len(data)} bytes")
    _, kind = FRAME_HEADER.unpack_from(data)
    magic, version, worker, arena_bytes = HELLO_BODY.unpack_from(data, FRAME_HEADER.size)
    if kind != HELLO or magic != MAGIC or version != PROTOCOL_VERSION:
        raise ValueError("not a hello from this version of genre-serve")
    return int(worker), int(arena_bytes)


HELLO_BYTES = FRAME_HEADER.size + HELLO_BODY.size


def records_frame(kind: bytes, records: list[tuple[Any, ...]], dtype: np.dtype[Any]) -> bytes:
    body = COUNT.pack(len(records)) + np.array(records, dtype=dtype).tobytes()
    return frame(kind, body)


def done_frame(records: list[tuple[Any, ...]], errors: dict[int, str]) -> bytes:
    body = COUNT.pack(len(records)) + np.array(records, dtype=DONE_RECORD).tobytes()
    if errors:
        body += json.dumps({str(key): value for key, value in errors.items()}).encode()
    return frame(DONE, body)


def read_records(body: memoryview, dtype: np.dtype[Any]) -> tuple[list[Any], bytes]:
    """The records of a ``SUBMIT`` or ``DONE`` body as tuples, and what follows them."""
    (count,) = COUNT.unpack_from(body)
    end = COUNT.size + count * dtype.itemsize
    records = np.frombuffer(body, dtype=dtype, count=count, offset=COUNT.size).tolist()
    return records, bytes(body[end:])


def table_frame(table: dict[str, Any]) -> bytes:
    return frame(TABLE, json.dumps(table).encode())


class FrameReader:
    """Cuts a byte stream into frames and hands each (kind, body) to ``deliver``."""

    def __init__(self, deliver: Callable[[bytes, memoryview], None]) -> None:
        self._buffer = bytearray()
        self._deliver = deliver

    def feed(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        available = len(buffer)
        frames: list[tuple[bytes, int, int]] = []
        while available - start >= FRAME_HEADER.size:
            length, kind = FRAME_HEADER.unpack_from(buffer, start)
            if length > MAX_FRAME_BYTES or length < 1:
                raise ValueError(f"a frame of {length} bytes")
            end = start + 4 + length
            if end > available:
                break
            frames.append((kind, start + FRAME_HEADER.size, end))
            start = end
        if not frames:
            return
        view = memoryview(bytes(buffer[:start]))
        del buffer[:start]
        for kind, body_start, body_end in frames:
            self._deliver(kind, view[body_start:body_end])


def generation_frame(kind: bytes, generation: int) -> bytes:
    return frame(kind, GENERATION.pack(generation))


def read_generation(body: memoryview) -> int:
    return int(GENERATION.unpack_from(body)[0])


def as_json(body: memoryview) -> Any:
    return json.loads(bytes(body))


def error_messages(tail: bytes) -> dict[int, str]:
    return {int(key): str(value) for key, value in json.loads(tail).items()} if tail else {}


def nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


def none_if_nan(value: float) -> float | None:
    return None if value != value else value
