"""SIGTERM on a real ``python -m server`` process: in-flight calls finish, new ones are refused."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genre.v1 import genre_pb2, genre_pb2_grpc
from tests.support.checkpoints import example_row, write_tiny_model
from tests.support.harness import prime_concurrency, sample_value, scrape, start_server_process


def request(rows: int) -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name="tiny-mlp"),
        rows=[genre_pb2.FeatureRow(features=example_row())] * rows,
    )


async def test_sigterm_drains_in_flight_calls_and_exits_cleanly(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository)
    server = start_server_process(
        repository,
        # A long queue delay holds calls in flight long enough to signal in the middle of them.
        {"GENRE_MAX_QUEUE_DELAY_MS": "1500", "GENRE_DRAIN_GRACE_SECONDS": "10"},
    )
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            await prime_concurrency(stub, "tiny-mlp", example_row(), 16)
            in_flight = [asyncio.ensure_future(stub.ClassifyFeatures(request(2))) for _ in range(5)]
            deadline = time.monotonic() + 10
            while sample_value(scrape(server.metrics_port), "genre_queue_rows") < 10:
                assert time.monotonic() < deadline, "calls never reached the queue"
                await asyncio.sleep(0.02)
            server.process.send_signal(signal.SIGTERM)
            server.read_logs_until("draining", timeout=10)

            status = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ClassifyFeatures(request(1), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

            replies = await asyncio.gather(*in_flight)
            assert all(len(reply.results) == 2 for reply in replies)
        assert server.process.wait(timeout=15) == 0
        server.read_logs_until("stopped", timeout=5)
    finally:
        server.stop()
