"""Traces across processes: two front-end workers and the inference process, each exporting its
own spans to a real OTLP/gRPC receiver, join the caller's trace over genre.v1, v2 and the
WebSocket.

The front-end that takes a call exports its call span; the ids travel with the request's record
(``SUBMIT_RECORD``) to the inference process, which exports the queue wait, the batch and the
forward pass as children of (and linked to) that call span.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from genre.inference import grpc_service_pb2_grpc as v2_grpc
from genre.v1 import genre_pb2_grpc
from tests.support.otlp import (
    FAST_EXPORT,
    FEATURES,
    FEATURES_CALL,
    PARENT_ID,
    ExportedSpan,
    collector,
    in_trace,
    traced_call,
    v2_request,
)
from tests.support.web import (
    AUDIO,
    END,
    RATE,
    config_frame,
    free_port,
    stream_frames,
    web_repository,
)
from tests.support.workers import workers

STREAM_CALL = "genre.v1.GenreClassifier/ClassifyAudioStream"
CALLS = {  # the caller's trace id for each protocol, and the name of its call span
    "genre.v1": ("4bf92f3577b34da6a3ce929d0e0e4736", FEATURES_CALL),
    "v2": ("5bf92f3577b34da6a3ce929d0e0e4736", "inference.GRPCInferenceService/ModelInfer"),
    "websocket": ("6bf92f3577b34da6a3ce929d0e0e4736", STREAM_CALL),
}


def traceparent(protocol: str) -> str:
    return f"00-{CALLS[protocol][0]}-{PARENT_ID}-01"


def complete(spans: list[ExportedSpan]) -> bool:
    """Every call's span is in, and every row it queued has its queue span from the inference
    process (the two processes export independently)."""
    for trace_id, name in CALLS.values():
        named = in_trace(spans, trace_id)
        if name not in named or not {"batch", "inference"} <= set(named):
            return False
        queued = sum(int(q.attributes["genre.rows"]) for q in named.get("queue", []))
        if queued != named[name][0].attributes["genre.rows"]:
            return False
    return True


async def test_the_inference_process_spans_join_each_callers_trace(tmp_path: Path) -> None:
    port = free_port()
    with collector() as receiver:
        settings = {
            "GENRE_INFERENCE_PROCESS": "on",
            "GENRE_OTLP_ENDPOINT": receiver.endpoint,
            "GENRE_HTTP_PORT": str(port),
            "GENRE_HTTP_HOST": "127.0.0.1",
            **FAST_EXPORT,
        }
        with workers(web_repository(tmp_path / "models"), **settings) as server:
            async with grpc.aio.insecure_channel(server.target) as channel:
                await genre_pb2_grpc.GenreClassifierStub(channel).ClassifyFeatures(
                    FEATURES, metadata=(("traceparent", traceparent("genre.v1")),)
                )
                await v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
                    v2_request(), metadata=(("traceparent", traceparent("v2")),)
                )
            result = await stream_frames(
                f"http://127.0.0.1:{port}/ws",
                [config_frame("tiny-audio", RATE), *AUDIO, END],
                headers={"traceparent": traceparent("websocket")},
            )
            assert result.outcome["status"] == "OK"
            spans = await receiver.wait_for(complete)
            records = server.records()
    for protocol, (trace_id, name) in CALLS.items():
        call = traced_call(spans, trace_id, name, process="inference")
        assert call.parent_span_id == PARENT_ID
        assert call.attributes["genre.protocol"] == protocol
        assert call.resource["genre.process"] == "worker"
        assert call.resource["genre.worker"] in (0, 1)
        [line] = [
            r for r in records if r.get("event") == "request" and r.get("trace_id") == trace_id
        ]
        assert line["protocol"] == protocol
        assert (
            line["worker"] == call.resource["genre.worker"]
        )  # the worker that logged it traced it
        assert call.attributes["genre.request_id"] == line["request_id"]
