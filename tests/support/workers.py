"""A supervisor with worker processes for tests, and the clients that reach every worker.

The kernel hands each TCP connection to one worker (SO_REUSEPORT), so these helpers open one
connection per channel and read from /proc (``bench.sockets``) which worker holds which.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.sockets import accepted_peer_ports
from genre.v1 import genre_pb2, genre_pb2_grpc
from tests.support.checkpoints import example_row
from tests.support.harness import ServerProcess, start_server_process
from tests.support.streams import OpenStream

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
CONNECTIONS = 8  # all 8 on one of 2 workers happens once in 128 starts: that test skips


def features_request(model: str = "tiny-mlp") -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name=model),
        rows=[genre_pb2.FeatureRow(features=example_row())],
    )


@contextmanager
def workers(repository: Path, count: str = "2", **env: str) -> Iterator[ServerProcess]:
    server = start_server_process(
        repository, {"GENRE_WORKERS": count, "GENRE_TORCH_THREADS": "1", **env}
    )
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def connections(
    target: str, count: int = CONNECTIONS
) -> AsyncIterator[list[grpc.aio.Channel]]:
    """``count`` channels, each its own TCP connection (no shared subchannel pool)."""
    opened = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(count)
    ]
    try:
        yield opened
    finally:
        for channel in opened:
            await channel.close(None)


async def health(channel: grpc.aio.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return int(reply.status)


async def spread_over_both(
    server: ServerProcess, channels: list[grpc.aio.Channel]
) -> dict[int, set[int]]:
    """Connects every channel; returns worker pid -> the client ports it accepted."""
    for channel in channels:
        await health(channel)
    pids = server.worker_pids().values()
    held = {pid: accepted_peer_ports(pid, server.grpc_port) for pid in pids}
    assert sum(len(ports) for ports in held.values()) == len(channels), held
    if any(not ports for ports in held.values()):
        pytest.skip(f"the kernel put all {len(channels)} connections on one worker: {held}")
    return held


async def classify_over_both(
    server: ServerProcess, channels: list[grpc.aio.Channel], calls: int
) -> None:
    """Spreads ``channels`` over both workers, then makes ``calls`` one-row calls on each."""
    await spread_over_both(server, channels)
    for channel in channels:
        stub = genre_pb2_grpc.GenreClassifierStub(channel)
        for _ in range(calls):
            await stub.ClassifyFeatures(features_request(), timeout=10)


async def health_until(target: str, wanted: int, seconds: float) -> None:
    """Polls readiness over fresh connections (the kernel picks a live worker for each)."""
    deadline = time.monotonic() + seconds
    seen: list[int] = []
    while time.monotonic() < deadline:
        async with connections(target, 1) as (channel,):
            try:
                seen.append(await health(channel))
            except grpc.aio.AioRpcError:
                seen.append(-1)
        if seen[-1] == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"health never became {wanted} in {seconds} s; saw {seen[-10:]}")


async def open_stream(channel: grpc.aio.Channel) -> OpenStream:
    """A live stream that has had one answer: it is bound to its worker."""
    stream = OpenStream(genre_pb2_grpc.GenreClassifierStub(channel), hop_seconds=0.0)
    assert (await stream.next_answer()).HasField("window")
    return stream
