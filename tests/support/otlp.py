"""A real OTLP/gRPC receiver on loopback: the collector's ``TraceService`` from
``opentelemetry-proto``, in a small gRPC server, keeping every span it is sent.

The server's exporters talk to it exactly as to an OpenTelemetry Collector, so the tests check
what leaves the process on the wire (ids as bytes, parents, links, resources), not what an
in-memory exporter was handed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2

from bench.studies.otlp_sink import start_receiver
from genre.inference import grpc_service_pb2 as v2
from genre.v1 import genre_pb2
from tests.support.checkpoints import FEATURE_NAMES, example_row

# The W3C recommendation's own example ids; a test caller's span.
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
SERVER, INTERNAL = 2, 1  # OTLP span kinds
# Spans leave the server's processes every 50 ms instead of the SDK's 5 s.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50"}
# What the tests send to be traced: a one-row call on tiny-mlp over genre.v1 and over v2.
FEATURES = genre_pb2.ClassifyFeaturesRequest(
    model=genre_pb2.ModelRef(name="tiny-mlp"), rows=[genre_pb2.FeatureRow(features=example_row())]
)
FEATURES_CALL = "genre.v1.GenreClassifier/ClassifyFeatures"


def v2_request() -> v2.ModelInferRequest:
    row = np.array([[example_row()[name] for name in FEATURE_NAMES]], dtype="<f4")
    request = v2.ModelInferRequest(model_name="tiny-mlp")
    request.inputs.add(name="FEATURES", datatype="FP32", shape=list(row.shape))
    request.raw_input_contents.append(row.tobytes())
    return request


def _value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@dataclass(frozen=True)
class ExportedSpan:
    """One span as the receiver got it; ids in lower-case hex ("" for no parent)."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    links: list[tuple[str, str]]  # (trace id, span id) of each link
    resource: dict[str, Any]
    start_ns: int
    end_ns: int
    status_code: int


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Every span exported to it, in arrival order; ``endpoint`` for GENRE_OTLP_ENDPOINT."""

    def __init__(self) -> None:
        self._spans: list[ExportedSpan] = []
        self._lock = threading.Lock()
        self.endpoint = ""

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        received = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ExportedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes=_attributes(span.attributes),
                            links=[
                                (link.trace_id.hex(), link.span_id.hex()) for link in span.links
                            ],
                            resource=resource,
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            status_code=span.status.code,
                        )
                    )
        with self._lock:
            self._spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[ExportedSpan]:
        with self._lock:
            return list(self._spans)

    async def wait_for(
        self, ready: Callable[[list[ExportedSpan]], bool], seconds: float = 15.0
    ) -> list[ExportedSpan]:
        """Every span so far, once ``ready`` holds of them; AssertionError after ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            spans = self.spans()
            if ready(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted({(s.name, s.trace_id[:8]) for s in spans})
                raise AssertionError(f"the spans never arrived; received {names}")
            await asyncio.sleep(0.05)


@contextmanager
def collector() -> Iterator[Collector]:
    """A receiver on a free loopback port, stopped afterwards."""
    receiver = Collector()
    server, port = start_receiver(receiver)
    receiver.endpoint = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        server.stop(None)


def in_trace(spans: list[ExportedSpan], trace_id: str) -> dict[str, list[ExportedSpan]]:
    """The spans of one trace by name."""
    named: dict[str, list[ExportedSpan]] = {}
    for span in spans:
        if span.trace_id == trace_id:
            named.setdefault(span.name, []).append(span)
    return named


def has(trace_id: str, *names: str) -> Callable[[list[ExportedSpan]], bool]:
    """A ``wait_for`` condition: the trace holds a span of every name."""

    def ready(spans: list[ExportedSpan]) -> bool:
        return set(names) <= set(in_trace(spans, trace_id))

    return ready


def traced_call(
    spans: list[ExportedSpan], trace_id: str, name: str, process: str = "server"
) -> ExportedSpan:
    """The call's span and, in its trace, its queue wait, batch and forward pass, linked as
    ``server.tracing.spans`` says; returns the call's span."""
    named = in_trace(spans, trace_id)
    [call] = named[name]
    assert call.kind == SERVER
    assert call.resource["service.name"] == "genre-serve"
    queues = [q for q in named["queue"] if q.parent_span_id == call.span_id]
    assert queues, "no queue span is a child of the call"
    batches = {b.span_id: b for b in named["batch"]}
    for queue in queues:
        assert queue.resource["genre.process"] == process
        assert queue.resource["service.name"] == "genre-serve"
        assert call.start_ns <= queue.start_ns <= queue.end_ns <= call.end_ns
        [(link_trace, batch_id)] = queue.links  # the batch that served it
        batch = batches[batch_id]
        assert link_trace == trace_id
        assert (trace_id, call.span_id) in batch.links
        assert batch.parent_span_id == call.span_id  # alone in its batch: in the call's trace
        [inference] = [i for i in named["inference"] if i.parent_span_id == batch_id]
        assert batch.start_ns <= inference.start_ns <= inference.end_ns <= batch.end_ns
        assert queue.end_ns == inference.start_ns  # the wait ends as the model starts
        assert batch.attributes["genre.batch.rows"] >= queue.attributes["genre.rows"]
        assert {s.kind for s in (queue, batch, inference)} == {INTERNAL}
        assert {s.resource["genre.process"] for s in (batch, inference)} == {process}
    return call
