"""One call's bookkeeping and the serving state every call shares.

``observe_call`` is the one place that turns ``ServiceError`` into its status, anything
unexpected into INTERNAL (traceback logged, nothing leaked), refuses calls while draining, and
writes the request's metrics and its single log line with the request id. ``ServingState`` is
shared with the app, which drains by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog

from server.errors import Draining, ServiceError
from server.logs import REQUEST_ID_KEY, get_logger
from server.logs import request_id as caller_request_id
from server.metrics import ServerMetrics
from server.reader import DrainSignal

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


@contextlib.asynccontextmanager
async def observe_call(
    method: str,
    context: grpc.aio.ServicerContext[Any, Any],
    metrics: ServerMetrics,
    state: ServingState,
    protocol: str = "genre.v1",
) -> AsyncIterator[CallRecord]:
    """``protocol``: genre.v1, or v2 for the Open Inference Protocol (metrics and log line)."""
    record = CallRecord(method=method)
    request_id = caller_request_id(context.invocation_metadata())
    started = time.perf_counter()
    in_flight = metrics.child(metrics.in_flight, method)
    in_flight.inc()
    state.call_started()
    failure: ServiceError | None = None
    with structlog_context(request_id=request_id):
        try:
            if state.draining:
                raise Draining("the server is draining; retry on another replica")
            yield record
        except ServiceError as error:
            failure = error
        except asyncio.CancelledError:
            record.status = "CANCELLED"
            raise
        except Exception:
            log.exception("unhandled_error", method=method)
            failure = ServiceError("internal error; the server log has the details")
        finally:
            if failure is not None:
                record.status = failure.code.name
            in_flight.dec()
            state.call_finished()
            elapsed = time.perf_counter() - started
            metrics.child(
                metrics.requests, method, record.model, record.version, record.status, protocol
            ).inc()
            metrics.child(metrics.request_latency, method, record.model, protocol).observe(elapsed)
            log.info(
                "request",
                method=method,
                protocol=protocol,
                model=record.model,
                version=record.version,
                rows=record.rows,
                batch=record.batch_rows,
                latency_ms=round(elapsed * 1000, 3),
                status=record.status,
                peer=context.peer(),
            )
        context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
        if failure is not None:
            await context.abort(failure.code, str(failure))


@contextlib.contextmanager
def structlog_context(**values: str) -> Iterator[None]:
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def deadline_of(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    """The call's deadline on the monotonic clock the batcher drops expired work by."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining
