"""Rendered overlays and a real server, shared by the deploy checks.

Every overlay is rendered once per session with ``kubectl kustomize`` (the tests that need it
skip, saying why, when kubectl is absent). The real server is a ``python -m server`` process on
loopback with two workers, a tiny features model and a tiny audio model, two calls (one
abstaining) and one audio stream made and one refused version, so its /metrics carries every
sample the dashboard, alerts and autoscaler refer to.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from genre.v1 import genre_pb2, genre_pb2_grpc
from tests.support.checkpoints import (
    TINY_FRONTEND,
    example_row,
    write_tiny_audio_model,
    write_tiny_model,
)
from tests.support.harness import ServerProcess, start_server_process
from tests.support.synthetic_audio import pcm_s16le, synth_clip

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPOSITORY_ROOT / "deploy"
OVERLAYS = ("cpu", "gpu")

Manifest = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is not on PATH; it renders the kustomize overlays (kubectl kustomize)")
    return found


def render(directory: Path) -> list[Manifest]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Manifest]]:
    """Overlay name -> its rendered objects."""
    return {overlay: render(DEPLOY / "overlays" / overlay) for overlay in OVERLAYS}


def only(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    matching = [
        item
        for item in objects
        if item["kind"] == kind and (name is None or item["metadata"]["name"] == name)
    ]
    assert len(matching) == 1, f"expected one {kind} {name or ''}, found {len(matching)}"
    return matching[0]


def server_container(objects: list[Manifest]) -> Manifest:
    deployment = only(objects, "Deployment", "genre-serve")
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "genre-serve")


def config_map_data(objects: list[Manifest]) -> dict[str, str]:
    """The data of the ConfigMap the server container reads with envFrom."""
    names = [ref["configMapRef"]["name"] for ref in server_container(objects)["envFrom"]]
    assert len(names) == 1
    data: dict[str, str] = only(objects, "ConfigMap", names[0])["data"]
    return data


@dataclass(frozen=True)
class RealServer:
    process: ServerProcess
    metrics_text: str


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    repository = tmp_path_factory.mktemp("deploy") / "models"
    write_tiny_model(repository, "tiny-mlp", seed=1)
    write_tiny_audio_model(repository, "tiny-audio")
    refused = write_tiny_model(repository, "tiny-mlp", seed=2)
    (refused / "model.safetensors").write_bytes(b"truncated")  # counted as a load failure
    # Two workers feeding an inference process, as the GPU overlay runs on a GPU node: the
    # supervisor's /metrics has the worker and the inference process's series too.
    process = start_server_process(
        repository,
        extra_env={
            "GENRE_TORCH_THREADS": "1",
            "GENRE_WORKERS": "2",
            "GENRE_INFERENCE_PROCESS": "on",
        },
    )
    try:
        with grpc.insecure_channel(process.target) as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            stub.ClassifyFeatures(
                genre_pb2.ClassifyFeaturesRequest(
                    model=genre_pb2.ModelRef(name="tiny-mlp"),
                    rows=[genre_pb2.FeatureRow(features=example_row())],
                ),
                timeout=30,
            )
            stub.ClassifyFeatures(  # no answer is that sure: one abstention (uncertain)
                genre_pb2.ClassifyFeaturesRequest(
                    model=genre_pb2.ModelRef(name="tiny-mlp"),
                    rows=[genre_pb2.FeatureRow(features=example_row())],
                    min_probability=1.0,
                ),
                timeout=30,
            )
            rate = TINY_FRONTEND.sample_rate
            audio = pcm_s16le(synth_clip("disco", 1.0, sample_rate=rate))
            stream = genre_pb2.StreamConfig(
                model=genre_pb2.ModelRef(name="tiny-audio"),
                sample_rate=rate,
                encoding=genre_pb2.PCM_S16LE,
                channels=1,
            )
            messages = [
                genre_pb2.ClassifyAudioStreamRequest(config=stream),
                genre_pb2.ClassifyAudioStreamRequest(audio=genre_pb2.AudioChunk(data=audio)),
            ]
            assert list(stub.ClassifyAudioStream(iter(messages), timeout=30))
        url = f"http://127.0.0.1:{process.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode("utf-8")
        yield RealServer(process=process, metrics_text=text)
    finally:
        process.stop()
