"""Traces of one server process: a caller's ``traceparent`` on genre.v1, v2 and the WebSocket,
the spans exported over OTLP/gRPC to a real receiver on loopback, and the log line's trace id.

The server exports to ``tests.support.otlp``'s receiver (the collector's own ``TraceService``);
the worker and inference processes are ``test_tracing_processes.py``'s.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from genre.inference import grpc_service_pb2_grpc as v2_grpc
from genre.v1 import genre_pb2, genre_pb2_grpc
from server.app import App, create_server
from server.logs import configure_logging
from tests.support.harness import loopback_config
from tests.support.otlp import (
    FAST_EXPORT,
    FEATURES,
    FEATURES_CALL,
    PARENT_ID,
    TRACE_ID,
    TRACEPARENT,
    Collector,
    collector,
    has,
    in_trace,
    traced_call,
    v2_request,
)
from tests.support.web import AUDIO, END, RATE, config_frame, started, stream_frames, web_repository

UNSET = 0  # the OTLP status code of a span that is not an error


def access_lines(err: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "request"]


@pytest.fixture
async def traced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[App, Collector]]:
    """A server with the web port, exporting to a receiver every 50 ms."""
    for name, value in FAST_EXPORT.items():
        monkeypatch.setenv(name, value)
    with collector() as receiver:
        app = await started(web_repository(tmp_path / "models"), otlp_endpoint=receiver.endpoint)
        try:
            yield app, receiver
        finally:
            await app.drain(grace=1.0)


async def test_a_genre_v1_call_is_one_trace_from_the_caller_to_the_model(
    traced: tuple[App, Collector], capfd: pytest.CaptureFixture[str]
) -> None:
    app, receiver = traced
    configure_logging("json", "info")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        await genre_pb2_grpc.GenreClassifierStub(channel).ClassifyFeatures(
            FEATURES, metadata=(("traceparent", TRACEPARENT), ("tracestate", "vendor=opaque"))
        )
    name = FEATURES_CALL
    spans = await receiver.wait_for(has(TRACE_ID, name))  # a call's span ends after its batch's
    call = traced_call(spans, TRACE_ID, name)
    assert call.parent_span_id == PARENT_ID
    assert call.status_code == UNSET
    assert call.attributes["rpc.system"] == "grpc"
    assert call.attributes["rpc.method"] == "ClassifyFeatures"
    assert call.attributes["rpc.grpc.status_code"] == 0
    assert (call.attributes["genre.model"], call.attributes["genre.rows"]) == ("tiny-mlp", 1)
    assert call.resource["genre.process"] == "server"
    [line] = access_lines(capfd.readouterr().err)
    assert line["trace_id"] == TRACE_ID
    assert call.attributes["genre.request_id"] == line["request_id"]


async def test_v2_calls_and_calls_that_bring_no_trace(
    traced: tuple[App, Collector], capfd: pytest.CaptureFixture[str]
) -> None:
    """v2 is traced as genre.v1 is; a call without a traceparent starts a trace of its own, a
    caller's unsampled trace is not exported (the SDK's default sampler follows the caller),
    and a refusal is an answer, not a server error."""
    app, receiver = traced
    configure_logging("json", "info")
    unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        await v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            v2_request(), metadata=(("traceparent", TRACEPARENT),)
        )
        stub = genre_pb2_grpc.GenreClassifierStub(channel)
        await stub.ClassifyFeatures(FEATURES, metadata=(("x-request-id", "untraced"),))
        await stub.ClassifyFeatures(FEATURES, metadata=(("traceparent", unsampled),))
        missing = genre_pb2.ClassifyFeaturesRequest(model=genre_pb2.ModelRef(name="nope"))
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ClassifyFeatures(missing, metadata=(("traceparent", TRACEPARENT),))
    lines = {line["request_id"]: line for line in access_lines(capfd.readouterr().err)}
    own_trace = str(lines["untraced"]["trace_id"])
    v1_name, v2_name = FEATURES_CALL, "inference.GRPCInferenceService/ModelInfer"
    spans = await receiver.wait_for(has(TRACE_ID, v2_name, v1_name))  # the refusal came last
    call = traced_call(spans, TRACE_ID, v2_name)
    assert call.parent_span_id == PARENT_ID
    assert call.attributes["genre.protocol"] == "v2"
    root = traced_call(spans, own_trace, v1_name)
    assert root.parent_span_id == ""
    [refused] = in_trace(spans, TRACE_ID)[v1_name]
    assert refused.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert refused.status_code == UNSET
    assert not in_trace(spans, "0af7651916cd43dd8448eb211c80319c")
    unsampled_lines = [line for line in lines.values() if line.get("trace_id", "")[:4] == "0af7"]
    assert len(unsampled_lines) == 1  # the log line still names the caller's trace


async def test_a_websocket_stream_joins_the_trace_of_its_upgrade_request(
    traced: tuple[App, Collector],
) -> None:
    app, receiver = traced
    assert app.web is not None
    await stream_frames(
        f"http://127.0.0.1:{app.web.port}/ws",
        [config_frame("tiny-audio", RATE), *AUDIO, END],
        headers={"traceparent": TRACEPARENT},
    )
    name = "genre.v1.GenreClassifier/ClassifyAudioStream"
    spans = await receiver.wait_for(has(TRACE_ID, name))
    call = traced_call(spans, TRACE_ID, name)
    assert call.parent_span_id == PARENT_ID
    assert call.attributes["genre.protocol"] == "websocket"
    assert "rpc.system" not in call.attributes
    windows = call.attributes["genre.rows"]  # the windows scored, each waited in the queue
    assert windows >= 5
    assert sum(q.attributes["genre.rows"] for q in in_trace(spans, TRACE_ID)["queue"]) == windows


async def test_without_an_endpoint_only_the_log_line_names_the_trace(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    app = await create_server(loopback_config(web_repository(tmp_path / "models")))
    configure_logging("json", "info")
    try:
        assert app.state.tracing is None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            for request_id, traceparent in (
                ("valid", TRACEPARENT),
                ("upper-case", TRACEPARENT.upper()),  # not W3C: ignored
                ("absent", ""),
            ):
                metadata = [("x-request-id", request_id)]
                if traceparent:
                    metadata.append(("traceparent", traceparent))
                await stub.ClassifyFeatures(FEATURES, metadata=metadata)
    finally:
        await app.drain(grace=1.0)
    lines = {line["request_id"]: line for line in access_lines(capfd.readouterr().err)}
    assert lines["valid"]["trace_id"] == TRACE_ID
    assert "trace_id" not in lines["upper-case"]
    assert "trace_id" not in lines["absent"]
