"""What an idle web port (``GENRE_HTTP_PORT``) costs the gRPC path: nothing, if the design holds.

The page and its WebSocket bridge are served by aiohttp in the server's own event loop, so an
idle port is one more listening socket in the loop's selector. This measures it: two copies of
the same server (one process each, ``gtzan-features-mlp``) run side by side, one with the web port
off and one with it on and nobody on the page. First each one's CPU with no caller at all; then
the same ``bench.load`` client sends one-row ``ClassifyFeatures`` calls closed-loop to one, then
the other, at each concurrency, the server's CPU per call read from /proc. Both are up the whole
time and the order alternates by round, so the drift of a shared machine falls on both; the ratio
on / off is taken per round, and its spread over rounds is the noise to judge it by.

    .venv/bin/python -m bench.studies.web_idle --out bench/results/web
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import machine
from bench.clients import run_client
from bench.cpu import server_cpu
from bench.plan import REPOSITORY_ROOT
from bench.request_bodies import write_requests
from bench.server_process import ServerProcess, start_server_process

MODEL = "gtzan-features-mlp"
SETTINGS = {"off": "0", "on, idle": "{port}"}
FIGURES = ("calls_per_second", "p50_ms", "p99_ms", "server_cpu_us_per_call")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(setting: str) -> ServerProcess:
    port = SETTINGS[setting].format(port=free_port())
    return start_server_process(
        REPOSITORY_ROOT / "models",
        {"GENRE_MODELS": MODEL, "GENRE_HTTP_PORT": port, "GENRE_HTTP_HOST": "127.0.0.1"},
    )


def idle_cpu(servers: dict[str, ServerProcess], seconds: float) -> dict[str, float]:
    """CPU seconds each server spends per second with no caller at all."""
    before = {name: server_cpu([s.process.pid], 1).total for name, s in servers.items()}
    time.sleep(seconds)
    after = {name: server_cpu([s.process.pid], 1).total for name, s in servers.items()}
    return {name: (after[name] - before[name]) / seconds for name in servers}


def cell(
    server: ServerProcess, concurrency: int, body: Path, args: argparse.Namespace
) -> dict[str, Any]:
    spec = {
        "kind": "unary",
        "target": server.target,
        "method": "/genre.v1.GenreClassifier/ClassifyFeatures",
        "request_file": str(body),
        "rows_per_call": 1,
        "concurrency": concurrency,
        "warmup_s": args.warmup,
        "window_s": args.window,
        "max_windows": 6,
    }
    before = server_cpu([server.process.pid], 1)
    result = run_client(spec, limit_s=120)
    after = server_cpu([server.process.pid], 1)
    if "failed" in result:
        raise RuntimeError(f"c={concurrency}: {result['failed']}")
    result["server_cpu_us_per_call"] = 1e6 * (after.total - before.total) / result["calls_total"]
    return result


def summary(cells: list[dict[str, Any]], concurrencies: list[int]) -> list[dict[str, Any]]:
    """Per concurrency: each figure's median over rounds for each setting, and on / off per
    round (the same round's two cells), its median and range."""
    rows = []
    for concurrency in concurrencies:
        mine = [c for c in cells if c["concurrency"] == concurrency]
        off = [c for c in mine if c["setting"] == "off"]
        on = [c for c in mine if c["setting"] != "off"]
        row: dict[str, Any] = {"concurrency": concurrency, "rounds": len(off)}
        for figure in FIGURES:
            ratios = [b[figure] / a[figure] for a, b in zip(off, on, strict=True)]
            row[figure] = {
                "off": statistics.median(c[figure] for c in off),
                "on": statistics.median(c[figure] for c in on),
                "ratio_median": statistics.median(ratios),
                "ratio_range": [min(ratios), max(ratios)],
            }
        rows.append(row)
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# The web port on but idle, against off: the gRPC path's cost",
        "",
        f"`python -m bench.studies.web_idle` on {result['machine']['cpu_count']} x "
        f"{result['machine']['cpu_model']} (load average at start "
        f"{result['machine']['load_average_at_start'][0]:.2f}); two servers side by side, one "
        f"process each, `{MODEL}`, one named row per `ClassifyFeatures` call, closed loop; "
        f"{result['rounds']} rounds, the two settings alternating in each. Medians over rounds; "
        "on / off is per round, median and range.",
        "",
        "With no caller at all, CPU cores used: "
        + ", ".join(f"{name} {cores:.4f}" for name, cores in result["idle_cpu_cores"].items())
        + ".",
        "",
        "| c | figure | off | on, idle | on / off (median) | on / off (range) |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for row in result["summary"]:
        for figure in FIGURES:
            value = row[figure]
            low, high = value["ratio_range"]
            lines.append(
                f"| {row['concurrency']} | {figure} | {value['off']:,.2f} | {value['on']:,.2f} "
                f"| {value['ratio_median']:.3f} | {low:.3f}-{high:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=1.5)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU to read")
    parser.add_argument("--out", type=Path, default=REPOSITORY_ROOT / "bench" / "results" / "web")
    args = parser.parse_args(argv)
    concurrencies = [int(part) for part in args.concurrency.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    described = machine.describe()
    cells = []
    servers = {setting: start(setting) for setting in SETTINGS}
    try:
        idle = idle_cpu(servers, args.idle)
        with tempfile.TemporaryDirectory() as workdir:
            body = write_requests(Path(workdir), REPOSITORY_ROOT / "models" / MODEL / "1", MODEL)
            for round_index in range(args.rounds):
                for concurrency in concurrencies:
                    order = list(SETTINGS) if round_index % 2 == 0 else list(reversed(SETTINGS))
                    for setting in order:
                        measured = cell(servers[setting], concurrency, body["features-1"], args)
                        cells.append({"round": round_index, "setting": setting, **measured})
                        shown = ("round", "setting", "concurrency", *FIGURES)
                        print(json.dumps({k: cells[-1][k] for k in shown}), file=sys.stderr)
    finally:
        for server in servers.values():
            server.stop()
    result = {
        "machine": described,
        "rounds": args.rounds,
        "idle_cpu_cores": idle,
        "summary": summary(cells, concurrencies),
        "cells": cells,
    }
    (args.out / "web_idle.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "web_idle.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
