"""``bench.load`` client processes: started with their spec, finished into their JSON result.

Each cell's client is a process of its own, so its CPU never competes with the harness's; several
can run at once (``bench.studies.workers_streams`` starts one per load process before finishing
any).
``run_clients`` runs one unary cell as several processes that split its concurrency and
connections, starts their windows together and stops them together, and merges what they
measured (``bench.windows``): so that the client is not what a fast server waits for.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from bench.plan import REPOSITORY_ROOT
from bench.windows import ClientWindow, judged, summarize

_LOAD = [sys.executable, "-m", "bench.load"]


def start_client(spec: dict[str, Any]) -> subprocess.Popen[str]:
    """A ``bench.load`` process reading ``spec`` from a file as its stdin, so a process started
    now never waits for its spec behind another's (as a pipe written later would make it)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec_file:
        json.dump(spec, spec_file)
    try:
        with open(spec_file.name, encoding="utf-8") as stdin:
            return subprocess.Popen(
                _LOAD,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPOSITORY_ROOT,
            )
    finally:
        os.unlink(spec_file.name)  # the child holds its own descriptor


def finish_client(process: subprocess.Popen[str], limit_s: float) -> dict[str, Any]:
    """Its JSON result, or why it failed."""
    try:
        out, err = process.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return {"failed": f"client ran past {limit_s:.0f} s"}
    if process.returncode != 0:
        return {"failed": " | ".join(err.strip().splitlines()[-3:])}
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def run_client(spec: dict[str, Any], limit_s: float) -> dict[str, Any]:
    """One client, start to finish."""
    return finish_client(start_client(spec), limit_s)


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def split_spec(spec: dict[str, Any], processes: int) -> list[dict[str, Any]]:
    """The cell's concurrency and connections dealt over ``processes`` coordinated clients (no
    more processes than concurrent calls, at least one connection each). Only the first scrapes
    the server's ``/metrics``, once before and once after the windows, as one client did."""
    count = max(1, min(processes, int(spec["concurrency"])))
    channels = int(spec.get("channels", 1))
    return [
        {
            **spec,
            "concurrency": _share(int(spec["concurrency"]), count, index),
            "channels": max(1, _share(channels, count, index)),
            "metrics_port": spec.get("metrics_port", 0) if index == 0 else 0,
            "coordinated": True,
        }
        for index in range(count)
    ]


class _Clients:
    """Coordinated ``bench.load`` processes, their stdout lines read into one queue by threads."""

    def __init__(self, specs: list[dict[str, Any]], scratch: Path) -> None:
        self.events: queue.Queue[tuple[int, str | None]] = queue.Queue()
        self.errors = [scratch / f"client-{index}.stderr" for index in range(len(specs))]
        self.processes: list[subprocess.Popen[str]] = []
        self._readers: list[threading.Thread] = []
        for index, spec in enumerate(specs):
            with self.errors[index].open("w") as stderr:  # the child keeps its own descriptor
                process = subprocess.Popen(
                    _LOAD,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                    cwd=REPOSITORY_ROOT,
                )
            self.processes.append(process)
            assert process.stdout is not None
            reader = threading.Thread(target=self._read, args=(index, process.stdout), daemon=True)
            reader.start()
            self._readers.append(reader)
            self.send(index, spec)

    def _read(self, index: int, stream: IO[str]) -> None:
        for line in stream:
            self.events.put((index, line))
        self.events.put((index, None))

    def send(self, index: int, message: dict[str, Any], last: bool = False) -> None:
        stdin = self.processes[index].stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(message) + "\n")
            stdin.flush()
            if last:
                stdin.close()
        except (BrokenPipeError, ValueError):  # it died; its end of stdout says so
            pass

    def why_failed(self, index: int) -> str:
        process = self.processes[index]
        process.wait(timeout=10)
        tail = self.errors[index].read_text(errors="replace").strip().splitlines()[-3:]
        return f"client process {index + 1} exited {process.returncode}: " + " | ".join(tail)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        for reader in self._readers:
            reader.join(timeout=10)  # the stream ends with its process
        for process in self.processes:
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()


def run_clients(spec: dict[str, Any], processes: int, limit_s: float) -> dict[str, Any]:
    """One unary cell measured by ``processes`` client processes together: calls/s summed,
    latency percentiles over every call, each process's CPU (``bench.windows``)."""
    specs = split_spec(spec, processes)
    with tempfile.TemporaryDirectory(prefix="genre-clients-") as scratch:
        clients = _Clients(specs, Path(scratch))
        try:
            return _conduct(spec, clients, time.monotonic() + limit_s)
        finally:
            clients.close()


def _conduct(spec: dict[str, Any], clients: _Clients, deadline: float) -> dict[str, Any]:
    count = len(clients.processes)
    tolerance = float(spec.get("tolerance", 0.1))
    stable_count = int(spec.get("stable_count", 3))
    windows: list[list[ClientWindow]] = [[] for _ in range(count)]
    results: list[dict[str, Any] | None] = [None] * count
    ready, stopped = 0, False
    while any(result is None for result in results):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return {"failed": "client processes ran past their time limit"}
        try:
            index, line = clients.events.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            if results[index] is None:
                return {"failed": clients.why_failed(index)}
            continue
        message = json.loads(line)
        if "ready" in message:
            ready += 1
            if ready == count:  # every process's calls flow: the warm-up starts for all at once
                start_at = time.perf_counter() + float(spec.get("warmup_s", 2.5))
                for other in range(count):
                    clients.send(other, {"start_at": start_at})
        elif "window" in message:
            windows[index].append(ClientWindow.from_json(message["window"]))
            measured = min(len(w) for w in windows)
            enough = measured >= int(spec.get("max_windows", 8)) or (
                measured > 0 and judged(windows, tolerance, stable_count)[1]
            )
            if enough and not stopped:
                stopped = True
                for other in range(count):
                    clients.send(other, {"stop": True}, last=True)
        else:
            results[index] = message["result"]
    done = [result for result in results if result is not None]
    return {
        "concurrency": spec["concurrency"],
        "rows_per_call": spec["rows_per_call"],
        **summarize(windows, int(spec["rows_per_call"]), tolerance, stable_count),
        "calls_total": sum(int(result["calls_total"]) for result in done),
        "errors_total": sum(int(result["errors_total"]) for result in done),
        "mean_batch_rows": done[0].get("mean_batch_rows"),
        "mean_queue_ms": done[0].get("mean_queue_ms"),
    }
