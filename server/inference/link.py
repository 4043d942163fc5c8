"""A front-end's side of the socket: its requests out, their answers and the model table in.

``InferenceLink.submit`` writes a call's rows into the front-end's arena and queues a fixed
record (with the call's trace and span ids when it is traced); every record queued while the
event loop ran one pass goes out as one ``SUBMIT`` frame (``call_soon``), so a burst of calls
costs the inference process one wake-up. A ``DONE`` frame completes each future from its slot,
which is then free again.

The link connects, and reconnects, by itself: when the inference process dies, the socket
closes at once, every call in flight ends UNAVAILABLE (so callers retry, on this pod once it is
back or on another), the table reads as not ready (health NOT_SERVING), and the link tries the
socket again every ``RETRY_SECONDS`` until the restarted process answers with its table.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from server.batcher import BatchResult, FloatArray
from server.errors import (
    DeadlineExpired,
    Draining,
    FailedPrecondition,
    InvalidArgument,
    ModelNotFound,
    Overloaded,
    ServiceError,
)
from server.inference.arena import Arena
from server.inference.messages import (
    ACK,
    DONE,
    DONE_RECORD,
    RELOAD,
    SUBMIT,
    SUBMIT_RECORD,
    TABLE,
    FrameReader,
    as_json,
    error_messages,
    frame,
    generation_frame,
    hello,
    read_records,
    records_frame,
)
from server.logs import get_logger
from server.tracing.context import CURRENT_CALL, NO_TRACE_FIELDS, CallTrace

log = get_logger("server.inference.link")
RETRY_SECONDS = 0.1
ERRORS: dict[int, type[ServiceError]] = {
    int(error.code.value[0]): error
    for error in (
        InvalidArgument,
        ModelNotFound,
        FailedPrecondition,
        Overloaded,
        DeadlineExpired,
        Draining,
    )
}


class InferenceUnavailable(ServiceError):
    """The inference process is not there (restarting): retry, here shortly or elsewhere."""

    code = grpc.StatusCode.UNAVAILABLE


def error_for(status: int, message: str) -> ServiceError:
    return ERRORS.get(status, ServiceError)(message)


@dataclass
class _InFlight:
    future: asyncio.Future[BatchResult]
    offset: int
    rows: int


class _Socket(asyncio.Protocol):
    def __init__(self, link: InferenceLink) -> None:
        self._link = link
        self._reader = FrameReader(link.deliver)
        self.lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class InferenceLink:
    """``on_table`` gets each table message; ``on_lost`` is called when the connection drops."""

    def __init__(
        self,
        path: str,
        worker: int,
        arena: Arena,
        on_table: Callable[[dict[str, Any]], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._path = path
        self._worker = worker
        self._arena = arena
        self._on_table = on_table
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._in_flight: dict[int, _InFlight] = {}
        self._outbox: list[tuple[int | float, ...]] = []
        self._flush_scheduled = False
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._transport is not None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="inference-link")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._lost("the server is shutting down")

    def submit(
        self,
        version: int,
        inputs: FloatArray,
        deadline: float | None,
        out_columns: int,
        trace: CallTrace | None = None,
    ) -> asyncio.Future[BatchResult]:
        if self._transport is None:
            raise InferenceUnavailable(
                "the inference process is restarting; retry shortly or on another replica"
            )
        rows, columns = int(inputs.shape[0]), int(math.prod(inputs.shape[1:]))
        capacity = max(inputs.nbytes, rows * out_columns * 4)
        offset = self._arena.put(inputs.reshape(rows, columns), capacity)
        if offset is None:
            raise Overloaded(
                f"this worker's {self._arena.capacity >> 20} MiB of shared memory for requests "
                "is full; retry later"
            )
        request = next(self._ids) & 0xFFFFFFFF
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        self._in_flight[request] = _InFlight(future, offset, rows)
        expires = math.nan if deadline is None else deadline
        ids = NO_TRACE_FIELDS if trace is None else trace.record_fields()
        self._outbox.append((request, version, offset, rows, columns, capacity, expires, *ids))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return future

    def request_reload(self) -> bool:
        if self._transport is None:
            return False
        self._transport.write(frame(RELOAD))
        return True

    def acknowledge(self, generation: int) -> None:
        if self._transport is not None:
            self._transport.write(generation_frame(ACK, generation))

    def deliver(self, kind: bytes, body: memoryview) -> None:
        if kind == DONE:
            self._complete(body)
        elif kind == TABLE:
            self._on_table(as_json(body))
        else:
            raise ValueError(f"unknown message kind {kind!r}")

    def _flush(self) -> None:
        self._flush_scheduled = False
        outbox, self._outbox = self._outbox, []
        if outbox and self._transport is not None:
            self._transport.write(records_frame(SUBMIT, outbox, SUBMIT_RECORD))

    def _complete(self, body: memoryview) -> None:
        records, tail = read_records(body, DONE_RECORD)
        messages = error_messages(tail)
        arena = self._arena
        for request, status, batch_rows, columns, queue_seconds in records:
            entry = self._in_flight.pop(request, None)
            if entry is None:
                continue
            future = entry.future
            if status == 0:
                outputs = arena.take(entry.offset, (entry.rows, columns))
                if not future.done():
                    future.set_result(BatchResult(outputs, batch_rows, queue_seconds))
            else:
                arena.free(entry.offset)
                if not future.done():
                    future.set_exception(error_for(status, messages.get(request, "failed")))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection = await self._connect(loop)
            except OSError:
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self._transport, protocol = connection
            log.info("inference_connected", path=self._path)
            try:
                await protocol.lost
            finally:
                self._lost("the inference process exited; retry shortly or on another replica")
            await asyncio.sleep(RETRY_SECONDS)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> tuple[asyncio.Transport, _Socket]:
        peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            peer.setblocking(False)
            await loop.sock_connect(peer, self._path)
            socket.send_fds(peer, [hello(self._worker, self._arena.capacity)], [self._arena.fd])
            transport, protocol = await loop.create_unix_connection(
                lambda: _Socket(self), sock=peer
            )
        except BaseException:
            peer.close()
            raise
        assert isinstance(transport, asyncio.Transport)
        return transport, protocol

    def _lost(self, why: str) -> None:
        """Every call in flight ends UNAVAILABLE; their slots are free (nobody writes them now)."""
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
            log.warning("inference_lost", path=self._path, in_flight=len(self._in_flight))
        self._outbox.clear()
        in_flight, self._in_flight = self._in_flight, {}
        for entry in in_flight.values():
            self._arena.free(entry.offset)
            if not entry.future.done():
                entry.future.set_exception(InferenceUnavailable(why))
        if transport is not None:
            self._on_lost()


class RemoteBatcher:
    """A version's batcher as a front-end sees it: the same ``submit`` as ``DynamicBatcher``."""

    def __init__(self, link: InferenceLink, version_id: int, out_columns: int) -> None:
        self._link = link
        self._version_id = version_id
        self._out_columns = out_columns

    async def submit(self, inputs: FloatArray, deadline: float | None = None) -> BatchResult:
        return await self._link.submit(
            self._version_id, inputs, deadline, self._out_columns, CURRENT_CALL.get()
        )
