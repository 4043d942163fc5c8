"""Resident memory of the supervisor and each worker, every bundled model loaded and warm.

Each worker holds every model (and on a GPU its own CUDA context), so a pod's memory request
grows with ``GENRE_WORKERS``; this measures by how much, on the machine it runs on.

    .venv/bin/python -m bench.studies.worker_memory --workers 1,2 --out bench/results/workers
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.plan import REPOSITORY_ROOT
from bench.server_process import rss_bytes, start_server_process

MIB = 1024 * 1024


def measure(workers: int, repository: Path) -> dict[str, Any]:
    server = start_server_process(repository, {"GENRE_WORKERS": str(workers)}, timeout=300)
    try:
        pids = list(server.worker_pids().values()) or [server.process.pid]
        per_worker = [rss_bytes(pid) / MIB for pid in pids]
        parent = rss_bytes(server.process.pid) / MIB if workers > 1 else 0.0
    finally:
        server.stop()
    return {
        "workers": workers,
        "supervisor_mib": parent,
        "worker_mib": per_worker,
        "total_mib": parent + sum(per_worker),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--repository", type=Path, default=REPOSITORY_ROOT / "models")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    machine = describe()
    rows = [measure(int(count), args.repository) for count in args.workers.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine, "rows": rows}
    (args.out / "worker_memory.json").write_text(json.dumps(result, indent=2) + "\n")
    device = machine["gpu"] or "CPU only"
    lines = [
        f"# Memory per serving process, every bundled model loaded ({device})",
        "",
        f"`python -m bench.studies.worker_memory --workers {args.workers}` on "
        f"{machine['cpu_count']} CPUs ({machine['cpu_model']}); resident set sizes after 'ready'.",
        "",
        "| workers | supervisor MiB | each worker MiB | total MiB |",
        "|---|---|---|---|",
    ]
    for row in rows:
        each = ", ".join(f"{value:.0f}" for value in row["worker_mib"])
        lines.append(
            f"| {row['workers']} | {row['supervisor_mib']:.0f} | {each} | {row['total_mib']:.0f} |"
        )
    (args.out / "worker_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
