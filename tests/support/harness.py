"""Real servers for tests: in-process on 127.0.0.1:0, or as a ``genre-serve`` subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from prometheus_client.parser import text_string_to_metric_families

from server.config import ServerConfig


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


def scrape(metrics_port: int) -> str:
    """A real HTTP GET of /metrics, as Prometheus does it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        return str(reply.read().decode("utf-8"))


def sample_value(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0 when absent)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != name:
                continue
            if labels and any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            total += sample.value
    return total


@dataclass
class ServerProcess:
    """A ``python -m server`` child whose ports were read from its 'starting' log line."""

    process: subprocess.Popen[str]
    grpc_port: int
    metrics_port: int
    log_lines: list[dict[str, object]]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def read_logs_until(self, event: str, timeout: float = 60.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        assert self.process.stderr is not None
        for line in _lines(self.process.stderr, deadline):
            record: dict[str, object] = json.loads(line)
            self.log_lines.append(record)
            if record.get("event") == event:
                return record
        raise AssertionError(f"server never logged {event!r}; saw {self.log_lines[-5:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


def _lines(stream: IO[str], deadline: float) -> Iterator[str]:
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            return
        if line.startswith("{"):
            yield line


def start_server_process(
    repository: Path, extra_env: Mapping[str, str] | None = None, timeout: float = 90.0
) -> ServerProcess:
    env = {
        **os.environ,
        "GENRE_GRPC_HOST": "127.0.0.1",
        "GENRE_GRPC_PORT": "0",
        "GENRE_METRICS_HOST": "127.0.0.1",
        "GENRE_METRICS_PORT": "0",
        "GENRE_MODEL_REPOSITORY": str(repository),
        "GENRE_LOG_FORMAT": "json",
        "GENRE_TORCH_THREADS": "1",
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "server"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    handle = ServerProcess(process, 0, 0, [])
    try:
        starting = handle.read_logs_until("starting", timeout)
        handle.grpc_port = int(str(starting["grpc_port"]))
        handle.metrics_port = int(str(starting["metrics_port"]))
        handle.read_logs_until("ready", timeout)
    except BaseException:
        handle.stop()
        raise
    return handle
