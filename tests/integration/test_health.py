"""Health as the probes see it, on real servers: strict readiness, liveness, drain.

Readiness (``""`` and ``genre.v1.GenreClassifier``) is SERVING only when every configured model
has its default version loaded and warm; ``liveness`` is SERVING from the moment the port answers
until the drain starts, whatever the models do (``server/app.py`` says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genre.v1 import genre_pb2, genre_pb2_grpc
from modelcore.checkpoint import Checkpoint, load_checkpoint
from server.app import App, create_server
from server.logs import configure_logging
from tests.support.checkpoints import example_row, write_tiny_model
from tests.support.harness import loopback_config, start_server_process

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
READINESS = ("", "genre.v1.GenreClassifier")


def per_model(name: str) -> str:
    return f"genre.v1.GenreClassifier/{name}"


async def health_of(app: App, *services: str) -> dict[str, str]:
    """Each service's status name as a probe would read it (NOT_FOUND for an unknown one)."""
    seen: dict[str, str] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in services:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            except grpc.aio.AioRpcError as error:
                seen[service] = error.code().name
            else:
                seen[service] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return seen


def logged(capfd: pytest.CaptureFixture[str], event: str) -> list[dict[str, Any]]:
    lines = capfd.readouterr().err.splitlines()
    return [json.loads(line) for line in lines if f'"event": "{event}"' in line]


def corrupt(version: Path) -> None:
    weights = version / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # the sha256 in the manifest no longer matches
    weights.write_bytes(bytes(data))


async def classify(app: App, name: str) -> str:
    """The version that answered one row for model ``name``."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        reply = await genre_pb2_grpc.GenreClassifierStub(channel).ClassifyFeatures(
            genre_pb2.ClassifyFeaturesRequest(
                model=genre_pb2.ModelRef(name=name),
                rows=[genre_pb2.FeatureRow(features=example_row())],
            ),
            timeout=5,
        )
    return str(reply.model.version)


async def started(repository: Path, **overrides: object) -> App:
    return await create_server(loopback_config(repository, **overrides))


@contextlib.asynccontextmanager
async def running(repository: Path, **overrides: object) -> AsyncIterator[App]:
    """A started server, drained when the test is done with it."""
    app = await started(repository, **overrides)
    try:
        yield app
    finally:
        await app.drain(grace=0.5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_not_ready_but_live_while_models_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port opens before loading; loading is held back here until the probes have looked."""
    repository = tmp_path / "models"
    write_tiny_model(repository, "tiny-mlp")
    release = threading.Event()

    def held_back(directory: Path) -> Checkpoint:
        release.wait(30)
        return load_checkpoint(directory)

    monkeypatch.setattr("server.registry.load_checkpoint", held_back)
    port = free_port()
    starting = asyncio.ensure_future(create_server(loopback_config(repository, grpc_port=port)))
    while_loading: dict[str, int] = {}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for service in ("liveness", *READINESS):  # the first waits for the port to open
                request = health_pb2.HealthCheckRequest(service=service)
                reply = await stub.Check(request, wait_for_ready=True, timeout=20)
                while_loading[service] = reply.status
            still_loading = not starting.done()
    finally:
        release.set()
        app = await starting
    try:
        assert still_loading
        assert while_loading == {
            "liveness": SERVING,
            "": NOT_SERVING,
            "genre.v1.GenreClassifier": NOT_SERVING,
        }
        assert await health_of(app, *READINESS, "liveness", per_model("tiny-mlp")) == {
            "": "SERVING",
            "genre.v1.GenreClassifier": "SERVING",
            "liveness": "SERVING",
            per_model("tiny-mlp"): "SERVING",
        }
    finally:
        await app.drain(grace=0.5)


async def test_a_model_with_every_version_refused_holds_readiness_back(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, "good-mlp")
    corrupt(write_tiny_model(repository, "bad-mlp"))
    configure_logging("json", "info")
    async with running(repository) as app:
        services = (*READINESS, "liveness", per_model("good-mlp"), per_model("bad-mlp"))
        assert await health_of(app, *services) == {
            "": "NOT_SERVING",
            "genre.v1.GenreClassifier": "NOT_SERVING",
            "liveness": "SERVING",
            per_model("good-mlp"): "SERVING",
            per_model("bad-mlp"): "NOT_SERVING",
        }
        assert await classify(app, "good-mlp") == "1"  # what is loaded still answers callers
        lines = capfd.readouterr().err.splitlines()
        [refused] = [json.loads(x) for x in lines if '"model_refused"' in x]
        assert (refused["model"], refused["version"]) == ("bad-mlp", 1)
        assert "sha256" in refused["reason"]
        [not_serving] = [json.loads(x) for x in lines if '"event": "not_serving"' in x]
        assert list(not_serving["waiting_for"]) == ["bad-mlp"]
        assert "every version was refused" in not_serving["waiting_for"]["bad-mlp"]

        write_tiny_model(repository, "bad-mlp", seed=5)  # a good version 2 arrives
        await app.reload()
        assert await health_of(app, *services) == dict.fromkeys(services, "SERVING")
        assert await classify(app, "bad-mlp") == "2"
        [serving] = logged(capfd, "serving")
        assert serving["models"] == ["bad-mlp", "good-mlp"]


async def test_a_refused_newer_version_does_not_block_when_an_older_one_is_loaded(
    tmp_path: Path,
) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, "tiny-mlp", seed=1)
    corrupt(write_tiny_model(repository, "tiny-mlp", seed=2))
    async with running(repository) as app:
        assert await health_of(app, *READINESS, per_model("tiny-mlp")) == {
            "": "SERVING",
            "genre.v1.GenreClassifier": "SERVING",
            per_model("tiny-mlp"): "SERVING",
        }
        assert await classify(app, "tiny-mlp") == "1"  # the older one is the default


async def test_a_pinned_version_that_is_not_loaded_holds_readiness_back(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The pin is the configured default: serving the highest instead is not what was asked."""
    repository = tmp_path / "models"
    corrupt(write_tiny_model(repository, "tiny-mlp", seed=1))
    write_tiny_model(repository, "tiny-mlp", seed=2)
    configure_logging("json", "info")
    async with running(repository, pinned_versions=("tiny-mlp=1",)) as app:
        assert await health_of(app, "", per_model("tiny-mlp")) == {
            "": "NOT_SERVING",
            per_model("tiny-mlp"): "NOT_SERVING",
        }
        [not_serving] = logged(capfd, "not_serving")
        assert not_serving["waiting_for"] == {"tiny-mlp": "pinned version 1 is not loaded"}


async def test_a_configured_model_absent_from_the_repository_holds_readiness_back(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, "tiny-mlp")
    configure_logging("json", "info")
    async with running(repository, models=("tiny-mlp", "later-mlp")) as app:
        assert await health_of(app, "", per_model("tiny-mlp"), per_model("later-mlp")) == {
            "": "NOT_SERVING",
            per_model("tiny-mlp"): "SERVING",
            per_model("later-mlp"): "NOT_SERVING",
        }
        [not_serving] = logged(capfd, "not_serving")
        assert "no version directory" in not_serving["waiting_for"]["later-mlp"]
        write_tiny_model(repository, "later-mlp")
        await app.reload()  # SIGHUP or the poll interval, in production
        assert await health_of(app, "", per_model("later-mlp")) == {
            "": "SERVING",
            per_model("later-mlp"): "SERVING",
        }


async def test_a_directory_without_versions_is_not_a_configured_model(tmp_path: Path) -> None:
    """Without GENRE_MODELS, a stray directory (``lost+found`` on a volume) does not count."""
    repository = tmp_path / "models"
    write_tiny_model(repository, "tiny-mlp")
    (repository / "lost+found").mkdir()
    async with running(repository) as app:
        assert (await health_of(app, ""))[""] == "SERVING"


async def test_every_health_name_turns_not_serving_when_the_drain_starts(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, "tiny-mlp")
    app = await started(repository)
    services = (*READINESS, "liveness", per_model("tiny-mlp"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        watches = [stub.Watch(health_pb2.HealthCheckRequest(service=s)) for s in services]
        assert [(await watch.read()).status for watch in watches] == [SERVING] * len(services)
        draining = asyncio.ensure_future(app.drain(grace=2.0))
        statuses = [(await watch.read()).status for watch in watches]
        assert statuses == [NOT_SERVING] * len(services)
        for watch in watches:
            watch.cancel()
        await draining


def test_probes_on_a_real_process_follow_readiness_and_liveness(tmp_path: Path) -> None:
    """``python -m server`` with a configured model it cannot load, probed the way the
    container's HEALTHCHECK and the Kubernetes probes do (``python -m server.healthcheck``)."""
    repository = tmp_path / "models"
    write_tiny_model(repository, "tiny-mlp")
    corrupt(write_tiny_model(repository, "bad-mlp"))
    process = start_server_process(repository, {"GENRE_TORCH_THREADS": "1"})
    try:

        def probe(service: str) -> int:
            command = [sys.executable, "-m", "server.healthcheck", "--target", process.target]
            return subprocess.run(
                [*command, "--service", service], capture_output=True, timeout=60, check=False
            ).returncode

        assert probe("liveness") == 0
        assert probe("") == 1
        assert probe("genre.v1.GenreClassifier") == 1
        assert probe(per_model("tiny-mlp")) == 0
        assert probe(per_model("bad-mlp")) == 1
    finally:
        assert process.stop() == 0
    ready = next(json.loads(x) for x in process.raw_lines if '"event": "ready"' in x)
    assert ready["serving"] is False
