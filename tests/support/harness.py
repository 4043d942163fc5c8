"""Real servers for tests: in-process on 127.0.0.1:0, or as a ``python -m server`` process."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import torch

from bench.scrape import metrics_text as scrape
from bench.scrape import sample_value
from bench.server_process import ServerProcess, start_server_process
from genre.v1 import genre_pb2, genre_pb2_grpc
from server.batcher import BatcherSettings
from server.config import ServerConfig
from server.metrics import ServerMetrics
from server.registry import ModelRegistry


def cpu_registry(
    repository: Path, names: tuple[str, ...] = (), pins: Mapping[str, int] | None = None
) -> ModelRegistry:
    """A model registry on the CPU with the server's default batching; ``close()`` it."""
    return ModelRegistry(
        repository,
        names=names,
        pins=dict(pins or {}),
        device=torch.device("cpu"),
        settings=BatcherSettings.per_kind(ServerConfig()),
        metrics=ServerMetrics.create(),
    )


def loopback_config(repository: Path, **overrides: object) -> ServerConfig:
    """Loopback, free ports, small limits a test can reach."""
    base = ServerConfig(
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_host="127.0.0.1",
        metrics_port=0,
        model_repository=repository,
        torch_threads=1,
        drain_grace_seconds=5.0,
        log_format="json",
    )
    return base.replace(**overrides)


async def prime_concurrency(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
    model: str,
    row: Mapping[str, float],
    callers: int,
) -> None:
    """A burst of concurrent calls: afterwards the batcher expects company and waits for it.

    Tests that need work to sit in the queue (deadlines, a full queue, drain) prime first; a
    lone caller is otherwise served at once, without any queue delay.
    """
    request = genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name=model), rows=[genre_pb2.FeatureRow(features=row)]
    )
    await asyncio.gather(*(stub.ClassifyFeatures(request) for _ in range(callers)))


__all__ = [
    "ServerProcess",
    "loopback_config",
    "prime_concurrency",
    "sample_value",
    "scrape",
    "start_server_process",
]
