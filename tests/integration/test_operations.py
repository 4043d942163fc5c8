"""Health, reflection and /metrics as an orchestrator and Prometheus see them."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from genre.v1 import genre_pb2, genre_pb2_grpc
from server.app import App, create_server
from server.logs import configure_logging
from tests.support.checkpoints import FEATURE_NAMES, example_row, write_tiny_model
from tests.support.harness import loopback_config, sample_value, scrape

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def health_of(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
    return int(reply.status)


async def test_health_is_serving_overall_and_per_model(channel: grpc.aio.Channel) -> None:
    assert await health_of(channel, "") == SERVING
    assert await health_of(channel, "genre.v1.GenreClassifier") == SERVING
    assert await health_of(channel, "genre.v1.GenreClassifier/tiny-mlp") == SERVING
    assert await health_of(channel, "genre.v1.GenreClassifier/other-mlp") == SERVING
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await health_of(channel, "genre.v1.GenreClassifier/absent")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_without_any_loadable_model_health_says_not_serving(tmp_path: Path) -> None:
    app = await create_server(loopback_config(tmp_path / "empty"))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            assert await health_of(channel, "") == NOT_SERVING
    finally:
        await app.drain(grace=0.5)


async def test_reflection_lists_the_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    services: set[str] = set()
    async for reply in stub.ServerReflectionInfo(iter([request])):
        services |= {service.name for service in reply.list_services_response.service}
    assert {
        "genre.v1.GenreClassifier",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= services


async def test_metrics_are_scraped_over_http(
    app: App, stub: genre_pb2_grpc.GenreClassifierAsyncStub
) -> None:
    await stub.ClassifyFeatures(
        genre_pb2.ClassifyFeaturesRequest(
            model=genre_pb2.ModelRef(name="tiny-mlp"),
            rows=[genre_pb2.FeatureRow(features=example_row())] * 3,
        )
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ClassifyFeatures(
            genre_pb2.ClassifyFeaturesRequest(model=genre_pb2.ModelRef(name="missing"))
        )
    text = scrape(app.metrics_port)
    ok = {"method": "ClassifyFeatures", "model": "tiny-mlp", "version": "2", "status": "OK"}
    assert sample_value(text, "genre_requests_total", ok) == 1
    assert sample_value(text, "genre_requests_total", {"status": "NOT_FOUND"}) == 1
    assert sample_value(text, "genre_inferred_rows_total", {"model": "tiny-mlp"}) == 3
    assert sample_value(text, "genre_request_duration_seconds_count", {"model": "tiny-mlp"}) == 1
    assert sample_value(text, "genre_queue_duration_seconds_count", {"model": "tiny-mlp"}) == 1
    assert sample_value(text, "genre_compute_duration_seconds_count", {"model": "tiny-mlp"}) == 1
    assert sample_value(text, "genre_batch_size_rows_sum", {"model": "tiny-mlp"}) == 3
    assert sample_value(text, "genre_queue_rows", {"model": "tiny-mlp"}) == 0
    assert sample_value(text, "genre_in_flight_requests") == 0
    info = {"model": "tiny-mlp", "version": "2", "kind": "features", "is_default": "true"}
    assert sample_value(text, "genre_model_info", info) == 1
    assert sample_value(text, "genre_model_info") == 3


async def test_one_json_log_line_per_call_without_the_payload(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "info")
    secret = 123.456789
    await stub.ClassifyFeatures(
        genre_pb2.ClassifyFeaturesRequest(
            model=genre_pb2.ModelRef(name="tiny-mlp"),
            rows=[genre_pb2.FeatureRow(features=example_row(tempo=secret))] * 2,
        ),
        metadata=(("x-request-id", "req-42"),),
    )
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    [record] = [line for line in lines if line.get("event") == "request"]
    assert record["method"] == "ClassifyFeatures"
    assert (record["model"], record["version"], record["rows"]) == ("tiny-mlp", "2", 2)
    assert record["status"] == "OK"
    assert record["batch"] >= 2
    assert record["latency_ms"] > 0
    assert record["request_id"] == "req-42"
    assert str(record["peer"]).startswith("ipv4:127.0.0.1")
    assert str(secret) not in json.dumps(lines)


async def test_messages_over_the_configured_size_are_refused(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, "tiny-mlp")
    app = await create_server(loopback_config(repository, max_message_bytes=64 * 1024))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            big = genre_pb2.ClassifyFeaturesRequest(
                model=genre_pb2.ModelRef(name="tiny-mlp"),
                dense=genre_pb2.DenseFeatures(
                    feature_names=list(FEATURE_NAMES), values=[1.0] * (5 * 4000)
                ),
            )
            assert big.ByteSize() > 64 * 1024
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ClassifyFeatures(big)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            small = genre_pb2.ClassifyFeaturesRequest(
                model=genre_pb2.ModelRef(name="tiny-mlp"),
                rows=[genre_pb2.FeatureRow(features=example_row())],
            )
            assert len((await stub.ClassifyFeatures(small)).results) == 1
    finally:
        await app.drain(grace=0.5)
