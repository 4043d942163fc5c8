"""``python -m server.healthcheck``, the container's HEALTHCHECK, against a real server."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from server.app import App, create_server
from server.healthcheck import main
from tests.support.harness import loopback_config


async def run(*argv: str) -> int:
    """The blocking health client off the event loop that serves the call."""
    return await asyncio.to_thread(main, list(argv))


async def test_exit_0_while_serving_for_the_server_and_each_model(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"127.0.0.1:{app.grpc_port}"
    assert await run("--target", target) == 0
    assert await run("--target", target, "--service", "genre.v1.GenreClassifier") == 0
    assert await run("--target", target, "--service", "genre.v1.GenreClassifier/tiny-mlp") == 0
    assert "SERVING" in capsys.readouterr().out


async def test_exit_1_for_an_unknown_service(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    target = f"127.0.0.1:{app.grpc_port}"
    assert await run("--target", target, "--service", "genre.v1.GenreClassifier/absent") == 1
    assert "NOT_FOUND" in capsys.readouterr().err


async def test_exit_1_without_models_and_while_draining(
    tmp_path: Path, repository: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = await create_server(loopback_config(tmp_path / "empty"))
    try:
        assert await run("--target", f"127.0.0.1:{empty.grpc_port}") == 1
        assert "NOT_SERVING" in capsys.readouterr().err
    finally:
        await empty.drain(grace=0.5)
    draining = await create_server(loopback_config(repository))
    target = f"127.0.0.1:{draining.grpc_port}"
    assert await run("--target", target) == 0
    await draining.health.enter_graceful_shutdown()  # drain()'s first step: all NOT_SERVING
    try:
        assert await run("--target", target) == 1
    finally:
        await draining.drain(grace=0.5)


def test_exit_1_when_nothing_listens(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and is closed now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["--target", f"127.0.0.1:{port}", "--timeout", "1"]) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_the_module_runs_without_torch() -> None:
    """A probe every few seconds must start fast: no torch, no server internals."""
    probe = (
        "import sys, server.healthcheck; "
        "print(sorted(m for m in ('torch', 'server.app', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
