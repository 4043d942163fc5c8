"""One call's bookkeeping and the serving state every call shares.

``observe_call`` is the one place that turns ``ServiceError`` into its status, anything
unexpected into INTERNAL (traceback logged, nothing leaked), refuses calls while draining, and
writes the request's metrics and its single log line with the request id (and the trace id, when
the caller sent a ``traceparent`` or the server exports traces: ``server.tracing.context``).
``ServingState`` is shared with the app, which drains by it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc

from server.errors import Draining, ServiceError
from server.logs import ACCESS_LOG, REQUEST_ID_KEY, call_metadata, get_logger
from server.metrics import ServerMetrics
from server.streaming.reader import DrainSignal
from server.tracing.context import trace_id_of

if TYPE_CHECKING:  # OpenTelemetry is imported only when traces are exported
    from server.tracing.spans import CallSpan, Tracing

log = get_logger("server.requests")


@dataclass
class ServingState:
    """Shared with the app: whether the process is draining, and how many calls are active."""

    active_calls: int = 0
    last_call_started: float = 0.0
    ready: bool = False  # what readiness health says now (every configured model, every worker)
    drain_started: asyncio.Event = field(default_factory=asyncio.Event)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    drain: DrainSignal = field(init=False)  # the drain as callbacks, for streams' readers
    tracing: Tracing | None = None  # this process's span exporter (GENRE_OTLP_ENDPOINT)

    @property
    def draining(self) -> bool:
        return self.drain_started.is_set()

    def __post_init__(self) -> None:
        self._idle.set()
        self.drain = DrainSignal(self.drain_started)

    def call_started(self) -> None:
        self.active_calls += 1
        self.last_call_started = time.monotonic()
        self._idle.clear()

    def call_finished(self) -> None:
        self.active_calls -= 1
        if self.active_calls == 0:
            self._idle.set()

    async def wait_quiet(self, seconds: float, settle: float) -> bool:
        """True once no call is active and none has started for ``settle`` seconds; False when
        ``seconds`` ran out first. Stopping the gRPC core while callers still arrive would end
        their calls CANCELLED; a settled server has shed them all with UNAVAILABLE."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    await self._idle.wait()
                    quiet_for = time.monotonic() - self.last_call_started
                    if self.active_calls == 0 and quiet_for >= settle:
                        return True
                    await asyncio.sleep(max(settle - quiet_for, 0.01))
        except TimeoutError:
            return False


@dataclass
class CallRecord:
    """What one call's log line and metrics say about it; filled in as the call proceeds."""

    method: str
    model: str = ""
    version: str = ""
    rows: int = 0
    batch_rows: int = 0
    status: str = "OK"


class observe_call:  # noqa: N801 -- used as ``async with observe_call(...)``, like a function
    """One call's bookkeeping: ``async with observe_call(...) as call`` around its body.

    ``protocol``: genre.v1, v2 for the Open Inference Protocol, or websocket (metrics and log
    line). A class rather than an ``asynccontextmanager``: every call passes through it, and a
    generator-based manager cost a few microseconds more per call for the same work.
    """

    __slots__ = (
        "_context",
        "_in_flight",
        "_metrics",
        "_protocol",
        "_request_id",
        "_span",
        "_started",
        "_state",
        "_trace_id",
        "record",
    )

    def __init__(
        self,
        method: str,
        context: grpc.aio.ServicerContext[Any, Any],
        metrics: ServerMetrics,
        state: ServingState,
        protocol: str = "genre.v1",
    ) -> None:
        self.record = CallRecord(method=method)
        self._context = context
        self._metrics = metrics
        self._state = state
        self._protocol = protocol
        self._request_id = ""
        self._trace_id = ""
        self._span: CallSpan | None = None
        self._started = 0.0
        self._in_flight = metrics.child(metrics.in_flight, method)

    async def __aenter__(self) -> CallRecord:
        self._request_id, traceparent, tracestate = call_metadata(
            self._context.invocation_metadata()
        )
        tracing = self._state.tracing
        if tracing is not None:
            self._span = tracing.start_call(
                self.record.method, self._protocol, self._request_id, traceparent, tracestate
            )
            self._trace_id = self._span.trace_id
        elif traceparent:
            self._trace_id = trace_id_of(traceparent)
        self._started = time.perf_counter()
        self._in_flight.inc()
        self._state.call_started()
        if self._state.draining:
            await self._end(Draining("the server is draining; retry on another replica"))
        return self.record

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: Any
    ) -> bool:
        if error is None or isinstance(error, ServiceError):
            await self._end(error)
        elif isinstance(error, Exception):
            log.exception("unhandled_error", method=self.record.method, request_id=self._request_id)
            await self._end(ServiceError("internal error; the server log has the details"))
        else:  # cancelled (the caller went away) or the process is stopping: no status to send
            if isinstance(error, asyncio.CancelledError):
                self.record.status = "CANCELLED"
            self._finish()
        return False

    async def _end(self, failure: ServiceError | None) -> None:
        """Finishes the call's records; then, for a failure, aborts with its status (raises)."""
        if failure is not None:
            self.record.status = failure.code.name
        self._finish()
        self._context.set_trailing_metadata(((REQUEST_ID_KEY, self._request_id),))
        if failure is not None:
            await self._context.abort(failure.code, str(failure))

    def _finish(self) -> None:
        record, metrics, protocol = self.record, self._metrics, self._protocol
        self._in_flight.dec()
        self._state.call_finished()
        elapsed = time.perf_counter() - self._started
        metrics.child(
            metrics.requests, record.method, record.model, record.version, record.status, protocol
        ).inc()
        metrics.child(metrics.request_latency, record.method, record.model, protocol).observe(
            elapsed
        )
        if ACCESS_LOG.wanted(record.status == "OK"):
            line: dict[str, object] = {
                "method": record.method,
                "protocol": protocol,
                "model": record.model,
                "version": record.version,
                "rows": record.rows,
                "batch": record.batch_rows,
                "latency_ms": round(elapsed * 1000, 3),
                "status": record.status,
                "peer": self._context.peer(),
                "request_id": self._request_id,
            }
            if self._trace_id:
                line["trace_id"] = self._trace_id
            ACCESS_LOG.emit(line)
        if self._span is not None:
            self._span.finish(record.model, record.version, record.rows, record.status)


def deadline_of(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    """The call's deadline on the monotonic clock the batcher drops expired work by."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining
