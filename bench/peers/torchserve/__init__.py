"""TorchServe 0.12 as the peer: its own venv, a model archive of our weights, a bounded launch.

TorchServe's pins stay out of the main environment: ``ensure_venv`` makes ``bench/.torchserve-venv``
(git-ignored) with the pinned packages, and a ``.pth`` line lends it the main venv's packages
(torch, numpy, safetensors) instead of downloading a second torch. Its gRPC stubs are generated
at run time from the ``inference.proto`` shipped inside TorchServe's frontend jar. The server is
started as its own process group on loopback and stopped by that group's id. Every step is
bounded in time; any failure raises ``TorchServeUnavailable`` with the reason, which the harness
records as a skipped comparison.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path
from types import ModuleType

from bench.peers.process import (
    PeerProcess,
    PeerUnavailable,
    free_ports,
    launch,
    run_step,
    wait_until_serving,
)

HERE = Path(__file__).resolve().parent
BENCH = HERE.parents[1]
REPOSITORY_ROOT = BENCH.parent
VENV = BENCH / ".torchserve-venv"
PINS = ("torchserve==0.12.0", "torch-model-archiver==0.12.0", "pyyaml==6.0.3")
METHOD = "/org.pytorch.serve.grpc.inference.InferenceAPIsService/Predictions"
_STATUS_PROTO = """syntax = "proto3";
package google.rpc;
import "google/protobuf/any.proto";
message Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
"""


class TorchServeUnavailable(PeerUnavailable):
    """TorchServe could not be set up or started; the message says why."""


def _run(command: list[str], timeout: float, **kwargs: object) -> None:
    try:
        run_step(command, timeout, **kwargs)
    except PeerUnavailable as error:
        raise TorchServeUnavailable(str(error)) from error


def ensure_venv(timeout: float = 240.0) -> Path:
    """The venv's directory, created and installed on first use (pinned), reused afterwards."""
    marker = VENV / "pins.txt"
    if marker.exists() and marker.read_text() == "\n".join(PINS):
        return VENV
    started = time.monotonic()
    shutil.rmtree(VENV, ignore_errors=True)
    base_python = getattr(sys, "_base_executable", sys.executable)
    _run([base_python, "-m", "venv", str(VENV)], timeout)
    venv_python = VENV / "bin" / "python"
    purelib = subprocess.run(
        [str(venv_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    Path(purelib, "genre-serve-main-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    remaining = timeout - (time.monotonic() - started)
    _run([str(venv_python), "-m", "pip", "install", "-q", *PINS], max(remaining, 1.0))
    marker.write_text("\n".join(PINS))
    return VENV


def inference_stubs(workdir: Path, venv: Path) -> tuple[ModuleType, ModuleType]:
    """``inference_pb2`` and ``inference_pb2_grpc`` generated from the jar's inference.proto."""
    jars = list(venv.glob("lib/python*/site-packages/ts/frontend/model-server.jar"))
    if not jars:
        raise TorchServeUnavailable("model-server.jar not found in the TorchServe venv")
    proto_dir = workdir / "proto"
    (proto_dir / "google" / "rpc").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(jars[0]) as jar:
        (proto_dir / "inference.proto").write_bytes(jar.read("proto/inference.proto"))
    (proto_dir / "google" / "rpc" / "status.proto").write_text(_STATUS_PROTO)
    spec = importlib.util.find_spec("grpc_tools")
    if spec is None or spec.origin is None:
        raise TorchServeUnavailable("grpcio-tools is not installed")
    well_known = Path(spec.origin).parent / "_proto"
    out = workdir / "stubs"
    out.mkdir(exist_ok=True)
    _run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(proto_dir / "inference.proto"),
            str(proto_dir / "google" / "rpc" / "status.proto"),
        ],
        60,
    )
    sys.path.insert(0, str(out))
    return importlib.import_module("inference_pb2"), importlib.import_module("inference_pb2_grpc")


def build_archive(workdir: Path, venv: Path, version_directory: Path, name: str) -> Path:
    """A .mar of the handler and the version's manifest and weights; returns the model store."""
    store = workdir / "store"
    store.mkdir(exist_ok=True)
    extra = workdir / "extra"
    extra.mkdir(exist_ok=True)
    (extra / "repo_root.txt").write_text(str(REPOSITORY_ROOT))
    manifest = json.loads((version_directory / "manifest.json").read_text())
    files = [extra / "repo_root.txt", version_directory / "manifest.json"]
    files.append(version_directory / str(manifest["weights"]["file"]))
    _run(
        [
            str(venv / "bin" / "torch-model-archiver"),
            "--model-name",
            name,
            "--version",
            "1.0",
            "--handler",
            str(HERE / "handler.py"),
            "--extra-files",
            ",".join(str(f) for f in files),
            "--export-path",
            str(store),
            "--force",
        ],
        120,
    )
    return store


def _ready_workers(management_port: int, name: str) -> int:
    """Workers of model ``name`` in state READY, from the management API (0 when it fails):
    the probe answers once one worker is up, and a cell should not start before them all."""
    url = f"http://127.0.0.1:{management_port}/models/{name}"
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            described = json.loads(reply.read())
    except (OSError, ValueError):
        return 0
    if not isinstance(described, list) or not described:
        return 0
    return sum(1 for worker in described[0].get("workers", []) if worker.get("status") == "READY")


def start_torchserve(
    workdir: Path,
    venv: Path,
    store: Path,
    name: str,
    batch_size: int,
    max_batch_delay_ms: float,
    probe: bytes,
    job_queue_size: int = 8192,
    timeout: float = 120.0,
    workers: int = 1,
) -> PeerProcess:
    """Starts TorchServe with our batch and queue settings; returns once ``probe`` answers.

    ``workers``: Python worker processes for the model (the Java front-end stays one), the
    peer of ours's ``GENRE_WORKERS`` in a run's worker dimension."""
    inference, management, metrics, grpc_inference, grpc_management = free_ports(5)
    mar = f"{name}.mar"
    model_settings = {
        name: {
            "1.0": {
                "defaultVersion": True,
                "marName": mar,
                "minWorkers": workers,
                "maxWorkers": workers,
                "batchSize": batch_size,
                "maxBatchDelay": max(1, round(max_batch_delay_ms)),
                "responseTimeout": 120,
            }
        }
    }
    config = workdir / "config.properties"
    config.write_text(
        "\n".join(
            [
                f"inference_address=http://127.0.0.1:{inference}",
                f"management_address=http://127.0.0.1:{management}",
                f"metrics_address=http://127.0.0.1:{metrics}",
                f"grpc_inference_port={grpc_inference}",
                f"grpc_management_port={grpc_management}",
                "grpc_inference_address=127.0.0.1",
                "grpc_management_address=127.0.0.1",
                "disable_token_authorization=true",
                "enable_envvars_config=false",
                "install_py_dep_per_model=false",
                f"default_workers_per_model={workers}",
                f"job_queue_size={job_queue_size}",
                f"model_store={store}",
                f"load_models={mar}",
                f"models={json.dumps(model_settings)}",
                "vmargs=-Xmx1g -XX:+ExitOnOutOfMemoryError",
            ]
        )
        + "\n"
    )
    log_dir = workdir / "logs"
    log_dir.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "LOG_LOCATION": str(log_dir),
        "METRICS_LOCATION": str(log_dir),
        "TS_DISABLE_SYSTEM_METRICS": "true",
    }
    handle = launch(
        [
            str(venv / "bin" / "torchserve"),
            "--start",
            "--foreground",
            "--ncs",
            "--disable-token-auth",
            "--ts-config",
            str(config),
            "--model-store",
            str(store),
        ],
        grpc_inference,
        log_dir / "launcher.log",
        workdir,
        env,
    )

    def not_ready() -> str:
        if workers == 1:
            return ""  # the probe was answered: its one worker is up
        ready = _ready_workers(management, name)
        return "" if ready >= workers else f"{ready} of {workers} workers ready"

    try:
        wait_until_serving(handle, METHOD, probe, timeout, not_ready)
    except PeerUnavailable as error:
        raise TorchServeUnavailable(f"TorchServe: {error}") from error
    return handle
