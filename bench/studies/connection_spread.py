"""How the kernel spreads connections over worker processes that share one port (SO_REUSEPORT).

Linux hands each new connection to one of the listening sockets by a hash of its addresses and
ports, so the spread is random per connection: a caller with one connection reaches one worker,
and N connections land unevenly. This probe starts the server with ``--workers`` processes,
opens ``C`` connections at a time (one health call each, so each is really accepted), reads from
/proc which worker accepted each, closes them, and repeats. It reports, per ``C``, the mean share
of the busiest worker and how often some worker got none.

    .venv/bin/python -m bench.studies.connection_spread --out bench/results/workers
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.machine import describe
from bench.plan import REPOSITORY_ROOT
from bench.server_process import start_server_process
from bench.sockets import accepted_peer_ports


def one_draw(target: str, port: int, pids: list[int], connections: int) -> list[int]:
    """Connections each worker accepted out of ``connections`` fresh ones."""
    channels = [
        grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]
    try:
        for channel in channels:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        return [len(accepted_peer_ports(pid, port)) for pid in pids]
    finally:
        for channel in channels:
            channel.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", default="1,2,4,8,16,32")
    parser.add_argument("--draws", type=int, default=40)
    parser.add_argument(
        "--out", type=Path, default=REPOSITORY_ROOT / "bench" / "results" / "workers"
    )
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.connections.split(",")]
    server = start_server_process(
        REPOSITORY_ROOT / "models",
        {"GENRE_WORKERS": str(args.workers), "GENRE_MODELS": "gtzan-features-mlp"},
    )
    rows: list[dict[str, Any]] = []
    try:
        pids = list(server.worker_pids().values())
        for count in counts:
            draws = [
                one_draw(server.target, server.grpc_port, pids, count) for _ in range(args.draws)
            ]
            assert all(sum(draw) == count for draw in draws), draws
            rows.append(
                {
                    "connections": count,
                    "draws": args.draws,
                    "busiest_share_mean": statistics.fmean(max(d) / count for d in draws),
                    "draws_with_an_idle_worker": sum(1 for d in draws if min(d) == 0),
                }
            )
            print(f"{count} connections: {rows[-1]}", file=sys.stderr)
    finally:
        server.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"workers": args.workers, "machine": describe(), "rows": rows}
    (args.out / "connection_spread.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "connection_spread.md").write_text(markdown(result))
    return 0


def markdown(result: dict[str, Any]) -> str:
    workers = result["workers"]
    lines = [
        f"# Connections over {workers} workers on one port (SO_REUSEPORT)",
        "",
        f"`python -m bench.studies.connection_spread --workers {workers}`; an even spread gives "
        f"the busiest worker 1/{workers} = {1 / workers:.2f}.",
        "",
        "| connections | draws | busiest worker's share (mean) | draws with an idle worker |",
        "|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['connections']} | {row['draws']} | {row['busiest_share_mean']:.2f} "
            f"| {row['draws_with_an_idle_worker']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
