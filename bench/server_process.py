"""A ``python -m server`` child process on loopback, its ports read from its 'starting' log line.

Benchmarks and the process-level tests both need one. A thread drains the child's stderr from the
start, because a server logging a line per request would otherwise block on a full pipe.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    grpc_port: int = 0
    metrics_port: int = 0
    log_lines: list[dict[str, object]] = field(default_factory=list)
    raw_lines: list[str] = field(default_factory=list)  # every stderr line, JSON or not
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def read_logs_until(
        self, event: str, timeout: float = 60.0, *, from_worker: bool | None = None
    ) -> dict[str, object]:
        """Consumes JSON log lines until one has ``event``; fails after ``timeout`` seconds.

        ``from_worker``: True takes only a worker process's line (it carries ``worker``), False
        only the supervisor's or a single process's; None either."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            if not line.startswith("{"):
                continue
            record: dict[str, object] = json.loads(line)
            self.log_lines.append(record)
            if record.get("event") == event and (
                from_worker is None or from_worker == ("worker" in record)
            ):
                return record
        raise AssertionError(f"server never logged {event!r}; last lines {self.log_lines[-5:]}")

    def records(self) -> list[dict[str, object]]:
        """Every JSON line the server (supervisor and workers included) has written so far."""
        return [json.loads(line) for line in list(self.raw_lines) if line.startswith("{")]

    def worker_pids(self) -> dict[int, int]:
        """Worker index -> pid of its latest start, from the supervisor's ``worker_started``."""
        return {
            int(str(record["worker_index"])): int(str(record["pid"]))
            for record in self.records()
            if record.get("event") == "worker_started"
        }

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        code = self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS line for process {pid}")


def _pump(stream: IO[str], lines: queue.Queue[str | None], raw: list[str]) -> None:
    try:
        for line in stream:
            raw.append(line)
            lines.put(line)
    except ValueError:  # the stream was closed by stop()
        pass
    finally:
        lines.put(None)


def start_server_process(
    repository: Path | None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    command: Sequence[str] = (sys.executable, "-m", "server"),
) -> ServerProcess:
    """Starts the server on free loopback ports and returns once it logged 'ready'.

    ``repository=None`` leaves the model repository to the server's default (this checkout's
    ``models/``), as ``make serve`` does. One serving process unless ``extra_env`` names
    ``GENRE_WORKERS``: then the ports and 'ready' are the supervisor's, which waits for all.
    """
    env = {
        **os.environ,
        "GENRE_GRPC_HOST": "127.0.0.1",
        "GENRE_GRPC_PORT": "0",
        "GENRE_METRICS_HOST": "127.0.0.1",
        "GENRE_METRICS_PORT": "0",
        "GENRE_LOG_FORMAT": "json",
        "GENRE_WORKERS": "1",
        "GENRE_HTTP_PORT": "0",  # the web page only where a caller asks (make serve exports 8080)
        **(extra_env or {}),
    }
    env.pop("GENRE_MODEL_REPOSITORY", None)
    if repository is not None:
        env["GENRE_MODEL_REPOSITORY"] = str(repository)
    process = subprocess.Popen(
        list(command),
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    handle = ServerProcess(process)
    assert process.stderr is not None
    threading.Thread(
        target=_pump, args=(process.stderr, handle._lines, handle.raw_lines), daemon=True
    ).start()
    try:
        starting = handle.read_logs_until("starting", timeout, from_worker=False)
        handle.grpc_port = int(str(starting["grpc_port"]))
        handle.metrics_port = int(str(starting["metrics_port"]))
        handle.read_logs_until("ready", timeout, from_worker=False)
    except BaseException:
        process.kill()
        handle.stop()
        raise
    return handle
