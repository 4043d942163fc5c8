"""Spans of every call, its queue wait, its batch and the model, exported over OTLP/gRPC.

Only imported when ``GENRE_OTLP_ENDPOINT`` is set (``server.tracing.start_tracing``): the server
that does not trace never loads OpenTelemetry. Each process (the single server, each
worker, the inference process) has one ``Tracing``: its own ``TracerProvider`` whose resource
names the service and the process, and a ``BatchSpanProcessor``, so a span's end only appends it
to a queue and a thread of the SDK exports in the background, never on the call's path.

The spans of one call, parented by the caller's ``traceparent`` when it sent one:

- ``{service}/{method}`` (SERVER kind), the call, from ``observe_call``: model, version, rows,
  request id and the gRPC status, as the RPC semantic conventions name them;
- ``queue`` per request the call submits, a child of the call: from being queued to its batch
  reaching the model, linked to the batch that served it;
- ``batch``, one per batch, with a link to every traced call it served, and a child of the first
  of them (so a call alone in its batch finds it in its own trace);
- ``inference``, the model's forward pass, a child of its batch.

In the inference process the calls are known from the ids each request record carries
(``server.inference.messages.SUBMIT_RECORD``), so its spans join the callers' traces as well.
Sampling is the SDK's (``OTEL_TRACES_SAMPLER``, default: follow the caller's sampled flag, sample
calls that come without one); only a sampled call's rows carry its ids onward, and the batcher
spends nothing on the others. The SDK's other ``OTEL_*`` variables (exporter headers,
certificate, timeout, batch delay) apply as documented by OpenTelemetry.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from importlib import metadata

import grpc
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.span import TraceState
from opentelemetry.trace.status import Status, StatusCode

from server.tracing.context import (
    CURRENT_CALL,
    CallTrace,
    FinishedBatch,
    parse_traceparent,
)

FLUSH_SECONDS = 2.0  # how long a stopping process waits for its last spans to leave
SERVICES = {
    "genre.v1": "genre.v1.GenreClassifier",
    "websocket": "genre.v1.GenreClassifier",
    "v2": "inference.GRPCInferenceService",
}
# The statuses that mark a server span as an error (RPC semantic conventions): the caller's own
# mistakes (INVALID_ARGUMENT, NOT_FOUND, ...) are answers, not failures of this server.
SERVER_ERRORS = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)
STATUS_NUMBERS = {code.name: int(code.value[0]) for code in grpc.StatusCode}


class CallSpan:
    """One call's span from ``observe_call``'s start to its end; ``trace_id`` for its log line."""

    __slots__ = ("_span", "trace_id")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self.trace_id = f"{span.get_span_context().trace_id:032x}"

    def finish(self, model: str, version: str, rows: int, status: str) -> None:
        CURRENT_CALL.set(None)
        span = self._span
        if span.is_recording():
            span.set_attributes(
                {
                    "genre.model": model,
                    "genre.model_version": version,
                    "genre.rows": rows,
                    "rpc.grpc.status_code": STATUS_NUMBERS.get(status, 2),
                }
            )
            if status in SERVER_ERRORS:
                span.set_status(Status(StatusCode.ERROR, status))
        span.end()


class Tracing:
    """This process's tracer and exporter. ``process``: server, worker or inference."""

    def __init__(self, endpoint: str, process: str, worker: int | None = None) -> None:
        attributes: dict[str, str | int] = {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or "genre-serve",
            "service.version": metadata.version("genre-serve"),
            "service.instance.id": f"{socket.gethostname()}/{os.getpid()}",
            "process.pid": os.getpid(),
            "genre.process": process,
        }
        if worker is not None:
            attributes["genre.worker"] = worker
        self._provider = TracerProvider(resource=Resource.create(attributes))
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self._tracer = self._provider.get_tracer("genre-serve")

    def start_call(
        self, method: str, protocol: str, request_id: str, traceparent: str, tracestate: str
    ) -> CallSpan:
        """The call's span, a child of the caller's when ``traceparent`` is valid; a sampled
        call becomes ``CURRENT_CALL`` for the batchers its rows reach."""
        service = SERVICES.get(protocol, protocol)
        parent = parse_traceparent(traceparent) if traceparent else None
        context = None
        if parent is not None:
            state = TraceState.from_header([tracestate]) if tracestate else None
            remote = SpanContext(
                parent.trace_id, parent.span_id, True, TraceFlags(parent.flags), state
            )
            context = trace.set_span_in_context(NonRecordingSpan(remote))
        attributes: dict[str, str] = {
            "rpc.service": service,
            "rpc.method": method,
            "genre.protocol": protocol,
            "genre.request_id": request_id,
        }
        if protocol != "websocket":
            attributes["rpc.system"] = "grpc"
        span = self._tracer.start_span(f"{service}/{method}", context, SpanKind.SERVER, attributes)
        call = CallSpan(span)
        span_context = span.get_span_context()
        if span_context.trace_flags.sampled:
            CURRENT_CALL.set(CallTrace(span_context, self))
        return call

    def remote_call(self, trace_high: int, trace_low: int, span_id: int, flags: int) -> CallTrace:
        """A front-end's call from the ids of its request record (the inference process)."""
        context = SpanContext((trace_high << 64) | trace_low, span_id, True, TraceFlags(flags))
        return CallTrace(context, self)

    def record_batch(self, batch: FinishedBatch) -> None:
        """A finished batch's spans, stamped with the instants the batcher noted."""
        offset = time.time_ns() - time.monotonic_ns()

        def wall(instant: float) -> int:
            return int(instant * 1e9) + offset

        tracer, calls = self._tracer, batch.calls
        span = tracer.start_span(
            "batch",
            trace.set_span_in_context(NonRecordingSpan(calls[0].trace.context)),
            attributes={
                "genre.model": batch.labels[0],
                "genre.model_version": batch.labels[1],
                "genre.batch.rows": batch.rows,
                "genre.batch.requests": len(calls),
            },
            links=[Link(call.trace.context) for call in calls],
            start_time=wall(batch.formed),
        )
        # The batch carries the model and sizes; its children and the per-call queue spans carry
        # only what is theirs: every attribute costs the SDK microseconds to set and to encode.
        inference = tracer.start_span(
            "inference", trace.set_span_in_context(span), start_time=wall(batch.started)
        )
        if batch.failure is not None:
            for failed in (inference, span):
                failed.set_status(Status(StatusCode.ERROR, type(batch.failure).__name__))
            inference.record_exception(batch.failure)
        computed = batch.started + batch.computing if batch.computing else batch.finished
        inference.end(wall(computed))
        span.end(wall(batch.finished))
        served_by = [Link(span.get_span_context())]
        for call in calls:
            queued = tracer.start_span(
                "queue",
                trace.set_span_in_context(NonRecordingSpan(call.trace.context)),
                attributes={"genre.rows": call.rows},
                links=served_by,
                start_time=wall(call.enqueued),
            )
            queued.end(wall(batch.started))

    async def close(self, seconds: float = FLUSH_SECONDS) -> None:
        """Exports what is queued, waiting at most ``seconds``: an unreachable collector must not
        hold up a drain. The SDK's shutdown blocks, so it runs in a daemon thread, which cannot
        keep the process alive either."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def shut_down() -> None:
            self._provider.shutdown()
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(finished.set_result, None)

        threading.Thread(target=shut_down, name="otlp-shutdown", daemon=True).start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished, seconds)
