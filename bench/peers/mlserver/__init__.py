"""MLServer 1.7.1 as a peer: N parallel workers, adaptive batching, its v2 gRPC endpoint.

The venv is made from the main venv's interpreter with MLServer's pins (``pins/mlserver.txt``),
``uvloop`` held below 0.21: with 0.23 the parallel workers die on start ("There is no current
event loop"). The run writes a ``settings.json`` (loopback, free ports, ``parallel_workers`` N:
the front-end process keeps gRPC, REST and the batcher, and hands batches to N worker processes)
and one model folder named as ours, with ``bench/peers/mlserver/runtime.py`` as its runtime and
adaptive batching at ``max_batch_size`` 256 and ``max_batch_time`` 5 ms. MLServer's batcher
counts requests, not rows: with one row per call the two are the same; a batch of 256-row calls
may hold up to 256 of them. Its Prometheus endpoint stays on (as ours and TorchServe's), on
loopback; ``debug`` is off.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from bench.peers.base import Peer, model_parameters
from bench.peers.process import PeerProcess, free_ports, launch
from bench.peers.venv import ensure_venv

REQUIREMENTS = ("mlserver==1.7.1", "uvloop<0.21")
RUNTIME = Path(__file__).resolve().parent / "runtime.py"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # as the load client's channel options


class MLServer(Peer):
    name = "mlserver"

    def prepare(self) -> None:
        python = getattr(sys, "_base_executable", sys.executable)
        self.venv = ensure_venv(self.name, python, REQUIREMENTS, self.settings.setup_s)

    def write_settings(self, workers: int, ports: list[int]) -> Path:
        http_port, grpc_port, metrics_port = ports
        root = self.workdir / f"workers-{workers}"
        model = root / "models" / self.settings.model
        model.mkdir(parents=True, exist_ok=True)
        shutil.copy2(RUNTIME, model / "runtime.py")
        (model / "model-settings.json").write_text(
            json.dumps(
                {
                    "name": self.settings.model,
                    "implementation": "runtime.GenreFeatures",
                    "max_batch_size": self.settings.max_batch_size,
                    "max_batch_time": self.settings.max_queue_delay_ms / 1000,
                    "parameters": {"extra": model_parameters(self.settings, workers)},
                },
                indent=2,
            )
        )
        (root / "settings.json").write_text(
            json.dumps(
                {
                    "debug": False,
                    "parallel_workers": workers,
                    "host": "127.0.0.1",
                    "http_port": http_port,
                    "grpc_port": grpc_port,
                    "metrics_port": metrics_port,
                    "grpc_max_message_length": MAX_MESSAGE_BYTES,
                    "model_repository_root": str(root / "models"),
                    "metrics_dir": str(root / ".metrics"),
                    "environments_dir": str(root / ".envs"),
                },
                indent=2,
            )
        )
        return root

    def start(self, workers: int) -> PeerProcess:
        ports = free_ports(3)
        root = self.write_settings(workers, ports)
        command = [str(self.venv / "bin" / "mlserver"), "start", str(root)]
        env = {**os.environ, "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.pop("PYTHONPATH", None)
        return launch(command, ports[1], self.workdir / f"mlserver-{workers}.log", root, env)
