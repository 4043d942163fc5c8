"""A real server on a loopback port, fed by tiny checkpoints written into tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from genre.v1 import genre_pb2_grpc
from server.app import App, create_server
from server.logs import configure_logging
from tests.support.checkpoints import write_tiny_model
from tests.support.harness import loopback_config


@pytest.fixture(autouse=True)
def _json_logs() -> None:
    configure_logging("json", "warning")


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """tiny-mlp versions 1 and 2 (different weights) and other-mlp version 1."""
    root = tmp_path / "models"
    write_tiny_model(root, "tiny-mlp", seed=1)
    write_tiny_model(root, "tiny-mlp", seed=2)
    write_tiny_model(root, "other-mlp", seed=3)
    return root


@pytest.fixture
async def app(repository: Path) -> AsyncIterator[App]:
    running = await create_server(loopback_config(repository))
    try:
        yield running
    finally:
        await running.drain(grace=1.0)


@pytest.fixture
async def channel(app: App) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> genre_pb2_grpc.GenreClassifierAsyncStub:
    return genre_pb2_grpc.GenreClassifierStub(channel)
