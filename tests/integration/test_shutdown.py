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
from tests.support.harness import sample_value, scrape, start_server_process


def request(rows: int) -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name="tiny-mlp"),
        rows=[genre_pb2.FeatureRow(features=example_row())] * rows,
    )


async def test_sigterm_drains_in_flight_calls_and_exits_cleanly(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    # A wide model: one 4096-row call computes for about a second on one thread, and the calls
    # that arrive meanwhile wait in the queue behind it, in flight when the signal comes.
    write_tiny_model(repository, hidden=(2048, 2048, 2048))
    server = start_server_process(
        # on the CPU: a GPU finishes the wide call at once (seen on an H100), and nothing queues
        repository,
        {"GENRE_DEVICE": "cpu", "GENRE_TORCH_THREADS": "1", "GENRE_DRAIN_GRACE_SECONDS": "20"},
    )
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            metrics = server.metrics_port
            big = asyncio.ensure_future(stub.ClassifyFeatures(request(4096), timeout=60))
            deadline = time.monotonic() + 10
            while sample_value(scrape(metrics), "genre_queue_rows") > 0 or (
                sample_value(scrape(metrics), "genre_in_flight_requests") < 1
            ):  # the big call has left the queue: it is computing
                assert time.monotonic() < deadline, "the big call never started"
                await asyncio.sleep(0.01)
            in_flight = [asyncio.ensure_future(stub.ClassifyFeatures(request(2))) for _ in range(5)]
            while sample_value(scrape(metrics), "genre_queue_rows") < 10:
                assert time.monotonic() < deadline, "calls never reached the queue"
                await asyncio.sleep(0.01)
            assert not big.done(), "the big call finished too soon to hold the others"
            server.process.send_signal(signal.SIGTERM)
            server.read_logs_until("draining", timeout=10)

            status = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ClassifyFeatures(request(1), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

            replies = await asyncio.gather(*in_flight)
            assert all(len(reply.results) == 2 for reply in replies)
            assert len((await big).results) == 4096
        assert server.process.wait(timeout=15) == 0
        server.read_logs_until("stopped", timeout=5)
    finally:
        server.stop()
