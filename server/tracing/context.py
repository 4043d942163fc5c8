"""W3C trace context on the call path, at next to no cost when nobody traces.

A caller's ``traceparent`` (and ``tracestate``) arrives as gRPC metadata or as a header of the
WebSocket's upgrade request; ``server.logs.call_metadata`` finds it in the same pass that finds
the request id. Without ``GENRE_OTLP_ENDPOINT`` the server only reads its trace id, for the call's
log line (``trace_id_of``). With it, ``server.tracing.spans`` starts the call's span and puts a
``CallTrace`` in ``CURRENT_CALL``, so whichever batcher the call's rows reach, this process's
``DynamicBatcher`` or the inference process's (the ids travel in ``SUBMIT_RECORD``), makes its
queue, batch and inference spans in the call's trace.

This module needs nothing beyond the standard library: a server that does not export traces
never imports OpenTelemetry.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

TRACEPARENT_KEY = "traceparent"
TRACESTATE_KEY = "tracestate"
SAMPLED = 0x01
_LOW_64 = (1 << 64) - 1
# version-trace_id-parent_id-flags, lower-case hex; later versions may append "-..." fields.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_NO_TRACE = "0" * 32
_NO_SPAN = "0" * 16


class ParentContext(NamedTuple):
    """The caller's span as its ``traceparent`` names it."""

    trace_id: int
    span_id: int
    flags: int


def parse_traceparent(value: str) -> ParentContext | None:
    """The caller's span, or None for a value the W3C rules say to ignore.

    Ignored, as the recommendation asks (the call then proceeds as if none was sent): anything
    not lower-case hex in the four fields, version ``ff``, a version-00 value with more after
    its flags, and an all-zero trace or parent id.
    """
    match = _valid(value)
    if match is None:
        return None
    _, trace_id, span_id, flags, _ = match.groups()
    return ParentContext(int(trace_id, 16), int(span_id, 16), int(flags, 16))


def trace_id_of(traceparent: str) -> str:
    """The 32 hex digits of a valid ``traceparent``'s trace id, else "" (for the log line: no
    numbers made, the digits as the caller sent them, which are lower-case when valid)."""
    match = _valid(traceparent) if traceparent else None
    return "" if match is None else match.group(2)


def _valid(value: str) -> re.Match[str] | None:
    match = _TRACEPARENT.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    version, trace_id, span_id, _, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _NO_TRACE or span_id == _NO_SPAN:
        return None
    return match


class QueuedCall(NamedTuple):
    """A traced request of a batch: its call, when it was queued, its rows."""

    trace: CallTrace
    enqueued: float
    rows: int


class FinishedBatch(NamedTuple):
    """A batch that served traced requests, as its batcher saw it: taken from the queue
    (``formed``), handed to the model (``started``) and its callers answered (``finished``), on
    ``time.monotonic()``; ``computing``: the runner's own seconds (0: it failed first)."""

    labels: tuple[str, str]  # model, version
    calls: list[QueuedCall]
    rows: int
    formed: float
    started: float
    computing: float = 0.0
    finished: float = 0.0
    failure: BaseException | None = None


class BatchSpans(Protocol):
    """Records a finished batch's spans (``server.tracing.spans.Tracing``)."""

    def record_batch(self, batch: FinishedBatch) -> None: ...


@dataclass(frozen=True, slots=True)
class CallTrace:
    """A sampled call's span as a batcher needs it: ``context`` is its OpenTelemetry
    ``SpanContext`` (the parent of the call's queue span, a link of its batch's span) and
    ``spans`` records the batch in this process's exporter."""

    context: Any
    spans: BatchSpans

    def record_fields(self) -> tuple[int, int, int, int]:
        """The ids as ``SUBMIT_RECORD`` carries them: trace id high and low 64 bits, span id,
        flags."""
        context = self.context
        trace_id = int(context.trace_id)
        return trace_id >> 64, trace_id & _LOW_64, int(context.span_id), int(context.trace_flags)


NO_TRACE_FIELDS = (0, 0, 0, 0)


# The call whose task is running: set by the call's span, read by ``DynamicBatcher.submit`` and
# the front-end's ``RemoteBatcher``. None for every call when tracing is off.
CURRENT_CALL: ContextVar[CallTrace | None] = ContextVar("genre_call_trace", default=None)
