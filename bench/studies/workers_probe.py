"""Issue #15's first measurement: what N complete server processes give over one, on this
machine, before any worker code exists.

N independent ``python -m server`` (or echo) processes on N loopback ports, one closed-loop
client process whose connections are dealt round-robin over them (``UnarySpec.channels`` and
``extra_targets``): the capacity of the "N complete servers, each with its own batcher" design
with perfectly spread connections. The kernel's SO_REUSEPORT balancing (connections, not
calls) is a separate question; this measures the ceiling it could reach.

    .venv/bin/python -m bench.studies.workers_probe --out bench/results/workers-probe
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import machine
from bench.clients import run_client
from bench.endpoints import CLASSIFY
from bench.plan import REPOSITORY_ROOT
from bench.request_bodies import write_requests
from bench.server_process import ServerProcess, start_server_process

MODEL = "gtzan-features-mlp"


@contextlib.contextmanager
def servers(kind: str, count: int, version: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        for _ in range(count):
            if kind == "echo":
                command = (sys.executable, "-m", "bench.peers.echo", "--manifest",
                           str(version / "manifest.json"))  # fmt: skip
                started.append(start_server_process(None, command=command))
            else:
                env = {"GENRE_MODELS": MODEL, "GENRE_TORCH_THREADS": "1"}
                started.append(start_server_process(REPOSITORY_ROOT / "models", env))
        yield started
    finally:
        for handle in started:
            handle.stop()


def cell(
    handles: list[ServerProcess], request: Path, concurrency: int, channels: int
) -> dict[str, Any]:
    spec = {
        "kind": "unary",
        "target": handles[0].target,
        "extra_targets": [h.target for h in handles[1:]],
        "channels": channels,
        "method": CLASSIFY,
        "request_file": str(request),
        "rows_per_call": 1,
        "concurrency": concurrency,
        "warmup_s": 2.0,
        "window_s": 1.5,
        "max_windows": 6,
    }
    return run_client(spec, 90.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--processes", default="1,2", help="server process counts")
    parser.add_argument("--concurrency", default="64,256")
    parser.add_argument("--channels", type=int, default=8, help="client connections")
    args = parser.parse_args(argv)
    version = max((REPOSITORY_ROOT / "models" / MODEL).iterdir(), key=lambda p: p.name)
    results: dict[str, Any] = {"machine": machine.describe(), "cells": []}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="workers-probe-") as scratch:
        request = write_requests(Path(scratch), version, MODEL)["features-1"]
        for kind in ("ours", "echo"):
            for count in (int(n) for n in args.processes.split(",")):
                with servers(kind, count, version) as handles:
                    for concurrency in (int(c) for c in args.concurrency.split(",")):
                        result = cell(handles, request, concurrency, args.channels)
                        result.update(server=kind, processes=count, channels=args.channels)
                        results["cells"].append(result)
                        figures = (result.get("calls_per_second"), result.get("p99_ms"))
                        print(kind, count, concurrency, *figures, flush=True)
    results["seconds"] = time.monotonic() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "probe.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (args.out / "probe.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def markdown(results: dict[str, Any]) -> str:
    described = results["machine"]
    lines = [
        "# Issue #15 probe: N complete server processes, connections spread by the client",
        "",
        f"Machine: {described['cpu_count']} x {described['cpu_model']}; Python "
        f"{described['python']}, grpcio {described['grpcio']}. One client "
        "process, closed loop, one named row per call, connections dealt round-robin over the "
        f"processes; {results['seconds']:.0f} s.",
        "",
        "| server | processes | client connections | concurrency | calls/s | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in results["cells"]:
        calls = c.get("calls_per_second")
        p99 = c.get("p99_ms")
        lines.append(
            f"| {c['server']} | {c['processes']} | {c['channels']} | {c.get('concurrency', '-')} | "
            f"{calls:,.0f} | {p99:.2f} | {c.get('errors') or c.get('failed', '')} |"
            if calls is not None
            else f"| {c['server']} | {c['processes']} | {c['channels']} | - | - | - | "
            f"{c.get('failed', '')} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
