"""Triton Inference Server 2.51 as a peer: the ``nvidia-pytriton`` 0.7.0 wheel's server, run bare.

PyTriton's Python API is not used, only what its wheel ships: the ``tritonserver`` binary, its
Python backend and the backend stubs, one per Python version. As PyTriton does, the run copies
the server into its scratch directory with the stub for Python 3.11 in place and puts the
wheel's bundled libraries on ``LD_LIBRARY_PATH``. The stub links the system ``libpython3.11``,
so the venv is made from Debian's ``/usr/bin/python3.11``: a venv of another 3.11 build fails
when the model loads (``'_thread.RLock' object has no attribute '_recursion_count'``).

The model repository holds one model named as ours, ``backend: "python"`` running
``bench/peers/triton/backend.py``; ``instance_group`` count N (N stub processes, the peer of
``GENRE_WORKERS=N``); Triton's dynamic batcher with ``max_batch_size`` 256 rows and a 5 ms
``max_queue_delay_microseconds``; ``FEATURES`` FP32 [-1, F] in, ``PROBABILITIES`` FP32 [-1, C]
out. HTTP is off; gRPC and metrics listen on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from bench.peers.base import Peer, model_parameters
from bench.peers.model import FEATURES, PROBABILITIES
from bench.peers.process import PeerProcess, PeerUnavailable, free_ports, launch
from bench.peers.venv import ensure_venv, site_packages

PYTHON = "/usr/bin/python3.11"
REQUIREMENTS = ("nvidia-pytriton==0.7.0",)
BACKEND = Path(__file__).resolve().parent / "backend.py"


def model_config(
    name: str, features: int, classes: int, instances: int, max_batch_size: int,
    max_queue_delay_ms: float, parameters: dict[str, str],
) -> str:  # fmt: skip
    """``config.pbtxt`` for the model (protobuf text format; JSON strings are valid in it)."""
    lines = [
        f"name: {json.dumps(name)}",
        'backend: "python"',
        f"max_batch_size: {max_batch_size}",
        f'input [ {{ name: "{FEATURES}" data_type: TYPE_FP32 dims: [ {features} ] }} ]',
        f'output [ {{ name: "{PROBABILITIES}" data_type: TYPE_FP32 dims: [ {classes} ] }} ]',
        f"instance_group [ {{ count: {instances} kind: KIND_CPU }} ]",
        f"dynamic_batching {{ max_queue_delay_microseconds: {round(max_queue_delay_ms * 1000)} }}",
    ]
    for key, value in parameters.items():
        setting = f"key: {json.dumps(key)} value: {{ string_value: {json.dumps(value)} }}"
        lines.append(f"parameters: {{ {setting} }}")
    return "\n".join(lines) + "\n"


class Triton(Peer):
    name = "triton"

    def prepare(self) -> None:
        venv = ensure_venv(self.name, PYTHON, REQUIREMENTS, self.settings.setup_s)
        site = site_packages(venv)
        dist = site / "pytriton" / "tritonserver"
        stub = dist / "python_backend_stubs" / "3.11" / "triton_python_backend_stub"
        if not (dist / "bin" / "tritonserver").exists() or not stub.exists():
            raise PeerUnavailable(f"tritonserver or its Python 3.11 stub missing under {dist}")
        self.home = self.workdir / "tritonserver"
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.copytree(dist, self.home, ignore=shutil.ignore_patterns("python_backend_stubs"))
        shutil.copy2(stub, self.home / "backends" / "python" / stub.name)
        self.venv, self.libraries = venv, site / "nvidia_pytriton.libs"

    def write_repository(self, workers: int) -> Path:
        manifest = json.loads((self.settings.version / "manifest.json").read_text())
        repository = self.workdir / f"repository-{workers}"
        model = repository / self.settings.model
        (model / "1").mkdir(parents=True, exist_ok=True)
        shutil.copy2(BACKEND, model / "1" / "model.py")
        (model / "config.pbtxt").write_text(
            model_config(
                self.settings.model,
                len(manifest["preprocessing"]["feature_names"]),
                len(manifest["labels"]),
                workers,
                self.settings.max_batch_size,
                self.settings.max_queue_delay_ms,
                model_parameters(self.settings, workers),
            )
        )
        return repository

    def start(self, workers: int) -> PeerProcess:
        repository = self.write_repository(workers)
        grpc_port, metrics_port = free_ports(2)
        libraries = [str(self.libraries), *filter(None, [os.environ.get("LD_LIBRARY_PATH")])]
        env = {
            **os.environ,
            "LD_LIBRARY_PATH": os.pathsep.join(libraries),
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        command = [
            str(self.home / "bin" / "tritonserver"),
            f"--model-repository={repository}",
            f"--backend-directory={self.home / 'backends'}",
            f"--cache-directory={self.home / 'caches'}",
            "--allow-http=false",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={grpc_port}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={metrics_port}",
            "--allow-gpu-metrics=false",
            "--exit-timeout-secs=5",
            "--log-verbose=0",
        ]
        log = self.workdir / f"tritonserver-{workers}.log"
        return launch(command, grpc_port, log, self.workdir, env)
