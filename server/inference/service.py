"""The inference process's side of the socket: front-ends in, batchers behind, answers out.

One ``InferenceService`` per inference process. It accepts each front-end's connection (its
arena's descriptor comes with the hello), sends it the model table, and queues every request of
every ``SUBMIT`` frame straight onto that version's ``DynamicBatcher`` (``enqueue``: a future, no
task). When a batch completes, each request's outputs are written into its own arena slot and
its record joins the front-end's outbox, which goes out as one ``DONE`` frame once the loop has
delivered the whole batch: one wake-up per batch each way, whatever the number of calls.

Version switches stay atomic per call across processes. Each loaded version has an id that
front-ends name in their requests; a reload publishes a new table (a new generation), and a
version the reload replaced keeps its batcher until every connected front-end has acknowledged a
generation without it, so a call resolved against the old table a moment before the switch is
still answered by the old version.

A traced call's record carries its trace and span ids; with ``tracing`` (``GENRE_OTLP_ENDPOINT``)
its request's queue, batch and inference spans are made and exported here, in the call's trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import mmap
import socket
from collections.abc import Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any

import grpc

from server.batcher import BatchResult
from server.errors import ServiceError
from server.inference.arena import map_arena, view_of
from server.inference.messages import (
    ACK,
    HELLO_BYTES,
    RELOAD,
    SUBMIT,
    SUBMIT_RECORD,
    FrameReader,
    done_frame,
    none_if_nan,
    read_generation,
    read_hello,
    read_records,
    table_frame,
)
from server.logs import get_logger
from server.registry import ModelTable, ServedVersion, local_batcher
from server.signatures import AudioSignature
from server.tracing.context import CallTrace

if TYPE_CHECKING:
    from server.tracing.spans import Tracing

log = get_logger("server.inference")
HELLO_TIMEOUT_SECONDS = 5.0
INTERNAL = grpc.StatusCode.INTERNAL.value[0]
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]


def status_number(code: grpc.StatusCode) -> int:
    return int(code.value[0])


class FrontEndConnection(asyncio.Protocol):
    """One front-end: its arena mapping, the table generation it resolves against, its outbox."""

    def __init__(self, service: InferenceService, worker: int, memory: mmap.mmap) -> None:
        self.service = service
        self.worker = worker
        self.memory = memory
        self.acknowledged = 0
        self.closed = False
        self._transport: asyncio.Transport | None = None
        self._reader = FrameReader(self._deliver)
        self._done: list[tuple[int, int, int, int, float]] = []
        self._errors: dict[int, str] = {}
        self._flush_scheduled = False
        self._logged_failure: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._reader.feed(data)
        except ValueError as error:  # a front-end of another version, or memory corruption
            log.error("front_end_protocol_error", worker=self.worker, error=str(error))
            if self._transport is not None:
                self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.service.forget(self)

    def send(self, data: bytes) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _deliver(self, kind: bytes, body: memoryview) -> None:
        if kind == SUBMIT:
            records, _ = read_records(body, SUBMIT_RECORD)
            self.service.submit(self, records)
        elif kind == ACK:
            self.acknowledged = read_generation(body)
            self.service.check_retired()
        elif kind == RELOAD:
            self.service.request_reload()
        else:
            raise ValueError(f"unknown message kind {kind!r}")

    def fail(self, request: int, code: int, message: str) -> None:
        self._done.append((request, code, 0, 0, 0.0))
        self._errors[request] = message
        self._schedule_flush()

    def finished(
        self, request: int, offset: int, capacity: int, outcome: BatchResult | BaseException
    ) -> None:
        """A request's batch is done: its outputs go into its slot, its record to the outbox."""
        if self.closed:
            return
        error = outcome if isinstance(outcome, BaseException) else None
        if isinstance(outcome, BatchResult):
            result = outcome
            outputs = result.outputs
            if outputs.nbytes > capacity:
                error = RuntimeError(
                    f"{outputs.nbytes} bytes of outputs for a {capacity}-byte slot"
                )
            else:
                view_of(self.memory, offset, outputs.shape)[...] = outputs
                columns = int(outputs.shape[1]) if outputs.ndim == 2 else 1
                self._done.append((request, 0, result.batch_rows, columns, result.queue_seconds))
                self._schedule_flush()
                return
        if isinstance(error, ServiceError):
            self.fail(request, status_number(error.code), str(error))
            return
        if error is not self._logged_failure:  # one line per failed batch, not per caller
            self._logged_failure = error
            log.error("batch_failed", error=repr(error), exc_info=error)
        self.fail(request, INTERNAL, "internal error; the server log has the details")

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._done:
            return
        done, errors = self._done, self._errors
        self._done, self._errors = [], {}
        self.send(done_frame(done, errors))


class InferenceService:
    """Every front-end connection, the published table and the versions being retired."""

    def __init__(
        self, reload: Callable[[], Coroutine[Any, Any, None]], tracing: Tracing | None = None
    ) -> None:
        self._reload = reload
        self._tracing = tracing
        self._connections: set[FrontEndConnection] = set()
        self._generation = 0
        self._ids = itertools.count(1)
        self._by_id: dict[int, ServedVersion] = {}
        self._id_of: dict[int, int] = {}  # id(ServedVersion) -> its wire id
        self._retiring: list[tuple[int, ServedVersion]] = []
        self._table_message: bytes | None = None
        self._closers: set[asyncio.Task[None]] = set()
        self._reloads: set[asyncio.Task[Any]] = set()
        self.loaded = False  # the first load pass is over

    @property
    def generation(self) -> int:
        return self._generation

    def publish(self, table: ModelTable) -> None:
        """Sends every front-end the table as it is now, under a new generation."""
        self._generation += 1
        versions = []
        for served in table.all():
            key = id(served)
            if key not in self._id_of:
                wire_id = next(self._ids)
                self._id_of[key] = wire_id
                self._by_id[wire_id] = served
            versions.append(describe(served, self._id_of[key]))
        message = {
            "generation": self._generation,
            "loaded": self.loaded,
            "versions": versions,
            "defaults": dict(table.defaults),
            "missing": dict(table.missing),
        }
        self._table_message = table_frame(message)
        for connection in list(self._connections):
            connection.send(self._table_message)
        self.check_retired()

    async def retire(self, retired: list[ServedVersion]) -> None:
        """The registry's ``retire`` hook: closed once no front-end can still name them."""
        self._retiring.extend((self._generation + 1, served) for served in retired)

    def check_retired(self) -> None:
        oldest = min((c.acknowledged for c in self._connections), default=self._generation)
        keep = []
        for generation, served in self._retiring:
            if oldest >= generation:
                wire_id = self._id_of.pop(id(served), None)
                if wire_id is not None:
                    self._by_id.pop(wire_id, None)
                task = asyncio.get_running_loop().create_task(local_batcher(served).close())
                self._closers.add(task)
                task.add_done_callback(self._closers.discard)
            else:
                keep.append((generation, served))
        self._retiring = keep

    def submit(self, connection: FrontEndConnection, records: list[Any]) -> None:
        memory = connection.memory
        by_id = self._by_id
        tracing = self._tracing
        for (
            request,
            version,
            offset,
            rows,
            columns,
            capacity,
            deadline,
            trace_high,
            trace_low,
            span_id,
            flags,
        ) in records:
            trace: CallTrace | None = None
            if span_id and tracing is not None:  # the front-end traced (and sampled) the call
                trace = tracing.remote_call(trace_high, trace_low, span_id, flags)
            served = by_id.get(version)
            if served is None:
                connection.fail(request, NOT_FOUND, "model.version: retired by a reload; retry")
                continue
            try:
                inputs = view_of(memory, offset, (rows, columns))
                local_batcher(served).enqueue(
                    inputs,
                    none_if_nan(deadline),
                    deliver=partial(connection.finished, request, offset, capacity),
                    trace=trace,
                )
            except ServiceError as error:
                connection.fail(request, status_number(error.code), str(error))
                continue
            except (TypeError, ValueError) as error:  # a slot outside the arena
                log.error("bad_request_record", worker=connection.worker, error=str(error))
                connection.fail(request, INTERNAL, "internal error; the server log has the details")

    def request_reload(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    def forget(self, connection: FrontEndConnection) -> None:
        if connection in self._connections:
            self._connections.discard(connection)
            log.info("front_end_disconnected", worker=connection.worker)
            self.check_retired()

    async def accept_forever(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            peer, _ = await loop.sock_accept(listener)
            task = loop.create_task(self._welcome(peer))
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)

    async def _welcome(self, peer: socket.socket) -> None:
        """Reads the hello and its descriptor, maps the arena, sends the current table."""
        loop = asyncio.get_running_loop()
        try:
            worker, memory = await loop.run_in_executor(None, receive_hello, peer)
        except (OSError, ValueError) as error:
            log.warning("front_end_refused", error=str(error))
            peer.close()
            return
        _, connection = await loop.connect_accepted_socket(
            lambda: FrontEndConnection(self, worker, memory), peer
        )
        self._connections.add(connection)
        log.info("front_end_connected", worker=worker)
        if self._table_message is not None:
            connection.send(self._table_message)

    async def close(self) -> None:
        for connection in list(self._connections):
            connection.close()
        for task in list(self._closers):
            with contextlib.suppress(asyncio.CancelledError):
                task.cancel()
                await task


def receive_hello(peer: socket.socket) -> tuple[int, mmap.mmap]:
    """The worker index and the mapped arena of a new connection (blocking, in a thread)."""
    peer.setblocking(True)
    peer.settimeout(HELLO_TIMEOUT_SECONDS)
    data, fds, _, _ = socket.recv_fds(peer, HELLO_BYTES, 1)
    while fds and len(data) < HELLO_BYTES:
        more = peer.recv(HELLO_BYTES - len(data))
        if not more:
            break
        data += more
    peer.setblocking(False)
    if len(fds) != 1:
        for fd in fds:
            socket.close(fd)
        raise ValueError("hello came without the arena's descriptor")
    worker, arena_bytes = read_hello(data)
    return worker, map_arena(fds[0], arena_bytes)


def describe(served: ServedVersion, wire_id: int) -> dict[str, Any]:
    """What a front-end needs of a version: its manifest and what loading it measured."""
    signature = served.signature
    facts: dict[str, Any] = {}
    if isinstance(signature, AudioSignature):
        facts = {
            "windows_per_second": signature.windows_per_second,
            "detects_music": signature.detects_music,
        }
    return {
        "id": wire_id,
        "name": served.name,
        "version": served.version,
        "manifest": served.manifest.to_dict(),
        "fingerprint": served.fingerprint,
        "facts": facts,
    }
