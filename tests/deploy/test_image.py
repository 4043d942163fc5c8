"""The image, built and run: `make image LOCAL_BASE=1`, then the image's own entrypoint serving.

No container registry is reachable here, so the build runs on a Debian base made by mmdebstrap
from Debian packages and pip installs the pinned wheels offline from a wheelhouse (the Makefile
says how); podman builds it, and ``buildah run --isolation chroot`` runs the image's entrypoint as
its user (OCI runtimes cannot set rlimits in this sandbox), on the host's network with loopback
addresses and free ports. The server must turn SERVING, list the bundled models, pass the image's
HEALTHCHECK, and answer the mean GTZAN track with the probabilities the training code computes
from the checkout's manifest; SIGTERM must drain it to exit 0.

Marked ``image``. Skipped without podman, buildah or mmdebstrap (a failure when
GENRE_REQUIRE_ALL_SUITES=1 or CI=true, see tests/conftest.py). The first build on a machine takes
about 5 minutes; a later one, after code changes only, about a minute (the dependencies' layer is
reused).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.server_process import ServerProcess, start_server_process
from genre.v1 import genre_pb2, genre_pb2_grpc
from modelcore.checkpoint import list_versions, load_checkpoint
from modelcore.models import build_model
from modelcore.preprocessing import FeaturePreprocessor
from tests.deploy.conftest import REPOSITORY_ROOT
from tests.support.predictions import predict_probabilities

pytestmark = [pytest.mark.image, pytest.mark.timeout(1800)]

IMAGE = "localhost/genre-serve:test"
TOOLS = ("podman", "buildah", "mmdebstrap")
MODELS = REPOSITORY_ROOT / "models"
FEATURES_MODEL = "gtzan-features-mlp"
IMAGE_USER_ID = 10001
# Loopback only and free ports: the host's network is shared, and 50051 may be taken.
LOOPBACK_ENV = {
    "GENRE_GRPC_HOST": "127.0.0.1",
    "GENRE_GRPC_PORT": "0",
    "GENRE_METRICS_HOST": "127.0.0.1",
    "GENRE_METRICS_PORT": "0",
}


def buildah(*arguments: str, timeout: float = 120) -> str:
    result = subprocess.run(
        ["buildah", *arguments], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"buildah {' '.join(arguments)}:\n{result.stderr}"
    return result.stdout


def image_config(image: str) -> dict[str, Any]:
    """The image's Docker-format config: Entrypoint, Cmd, Env, User, Healthcheck."""
    config: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", image))["Docker"][
        "config"
    ]
    return config


@pytest.fixture(scope="module")
def image() -> str:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not on PATH; the image test builds with podman on a Debian base "
            "made by mmdebstrap and runs the image with buildah"
        )
    result = subprocess.run(
        ["make", "image", "LOCAL_BASE=1", f"IMAGE={IMAGE}"],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert result.returncode == 0, f"make image failed:\n{result.stdout[-3000:]}{result.stderr}"
    return IMAGE


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc's children lists."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            found.extend(children)
            pending.extend(children)
    return found


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def server_pid(runner: ServerProcess) -> int:
    """The server itself: the image's entrypoint process under ``buildah run``."""
    found = [
        pid
        for pid in descendants(runner.process.pid)
        if "python" in (line := command_line(pid)).split(" ")[0] and "bin/genre-serve" in line
    ]
    assert len(found) == 1, f"expected one genre-serve process under buildah run, found {found}"
    return found[0]


def user_id(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


@dataclass
class ImageServer:
    runner: ServerProcess  # ``buildah run``, whose stderr is the server's log
    container: str


@pytest.fixture(scope="module")
def served(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageServer]:
    container = buildah("from", "--pull=never", "--name", f"genre-serve-test-{os.getpid()}", image)
    container = container.strip()
    config = image_config(image)
    command = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    environment = [
        flag for name, value in LOOPBACK_ENV.items() for flag in ("-e", f"{name}={value}")
    ]
    # buildah run and everything under it form one process group, whose id the shell writes down
    # before it becomes buildah: whatever fails, the group is killed as one and nothing lingers.
    group_file = tmp_path_factory.mktemp("image") / "process-group"
    runner_command = ["setsid", "sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group_file)]
    runner_command += ["buildah", "run", "--isolation", "chroot", "--network", "host"]
    runner: ServerProcess | None = None
    try:
        runner = start_server_process(
            None, command=[*runner_command, *environment, container, "--", *command]
        )
        yield ImageServer(runner, container)
    finally:
        if group_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(group_file.read_text()), signal.SIGKILL)
        if runner is not None:
            runner.stop()
        buildah("rm", container)


def mean_track(preprocessing: Mapping[str, Any]) -> dict[str, float]:
    """The training rows' mean, in feature units: the row the model standardises to zeros."""
    offsets = {item["feature"]: item["offset"] for item in preprocessing["log_transforms"]}
    names, means = preprocessing["feature_names"], preprocessing["mean"]
    return {
        name: math.exp(mean) - offsets[name] if name in offsets else mean
        for name, mean in zip(names, means, strict=True)
    }


def test_the_image_serves_the_bundled_models_as_its_own_user(served: ImageServer) -> None:
    with grpc.insecure_channel(served.runner.target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = genre_pb2_grpc.GenreClassifierStub(channel)
        listed = stub.ListModels(genre_pb2.ListModelsRequest(), timeout=10)
    bundled = {path.name for path in MODELS.iterdir() if path.is_dir()}
    assert {info.model.name for info in listed.models} == bundled
    server = server_pid(served.runner)
    processes = [server, *descendants(server)]  # a supervisor's workers (one per CPU) too
    assert {user_id(pid) for pid in processes} == {IMAGE_USER_ID}


def test_the_image_answers_what_the_training_code_computes(served: ImageServer) -> None:
    version = max(list_versions(MODELS / FEATURES_MODEL))
    checkpoint = load_checkpoint(MODELS / FEATURES_MODEL / str(version))
    row = mean_track(checkpoint.manifest.preprocessing)
    request = genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name=FEATURES_MODEL), rows=[genre_pb2.FeatureRow(features=row)]
    )
    with grpc.insecure_channel(served.runner.target) as channel:
        reply = genre_pb2_grpc.GenreClassifierStub(channel).ClassifyFeatures(request, timeout=30)
    assert reply.model.version == str(version)
    model = build_model(checkpoint.manifest.architecture)
    model.load_state_dict(checkpoint.state_dict)
    model.eval()
    preprocessor = FeaturePreprocessor.from_dict(checkpoint.manifest.preprocessing)
    matrix = np.array([[row[name] for name in preprocessor.feature_names]])
    temperature = checkpoint.manifest.temperature
    expected = predict_probabilities(model, preprocessor, matrix, temperature)[0]
    labels = checkpoint.manifest.labels
    (result,) = reply.results
    got = {score.genre: score.probability for score in result.scores}
    np.testing.assert_allclose([got[label] for label in labels], expected, atol=1e-5)


def test_the_images_healthcheck_passes(served: ImageServer, image: str) -> None:
    """The HEALTHCHECK command as the image declares it, pointed at the port the test chose."""
    test = image_config(image)["Healthcheck"]["Test"]
    assert test[0] == "CMD"
    command = list(test[1:])
    command[command.index("--target") + 1] = served.runner.target
    buildah("run", "--isolation", "chroot", "--network", "host", served.container, "--", *command)


def test_sigterm_drains_the_image_to_exit_0(served: ImageServer) -> None:
    """Runs last in this module: it stops the server the others share."""
    os.kill(server_pid(served.runner), signal.SIGTERM)
    assert served.runner.process.wait(timeout=60) == 0
    served.runner.read_logs_until("stopped", timeout=10)
