"""Measures the batcher's knobs (max_batch_size, max_queue_delay_ms) to choose their defaults.

For each setting it starts a real ``python -m server`` on loopback, drives ClassifyFeatures (one
row per call) closed-loop at several concurrency levels from this process, and records
throughput and latency percentiles plus the server's own average batch size from /metrics.
Writes ``bench/results/batching_knobs.json`` and ``.md``. Bounded: a few seconds per cell.

    .venv/bin/python -m bench.studies.batching_knobs [--repository models] [--model NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bench import machine
from bench.scrape import scrape
from bench.server_process import start_server_process
from genre.v1 import genre_pb2, genre_pb2_grpc

RESULTS = Path(__file__).resolve().parents[1] / "results"


@dataclass(frozen=True)
class Cell:
    max_batch_size: int
    max_queue_delay_ms: float
    concurrency: int
    calls_per_second: float
    p50_ms: float
    p99_ms: float
    mean_batch_rows: float
    errors: int


def batch_totals(metrics_port: int) -> tuple[float, float]:
    totals = scrape(metrics_port)
    assert totals is not None
    return totals.rows, totals.executions


async def drive(
    target: str, request: genre_pb2.ClassifyFeaturesRequest, concurrency: int, seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(target) as channel:
        stub = genre_pb2_grpc.GenreClassifierStub(channel)

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    await stub.ClassifyFeatures(request, timeout=5)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def feature_request(target: str, model: str) -> genre_pb2.ClassifyFeaturesRequest:
    with grpc.insecure_channel(target) as channel:
        listing = genre_pb2_grpc.GenreClassifierStub(channel).ListModels(
            genre_pb2.ListModelsRequest()
        )
    info = next(m for m in listing.models if m.model.name == model and m.is_default)
    row = {spec.name: 0.5 for spec in info.features}
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name=model), rows=[genre_pb2.FeatureRow(features=row)]
    )


def measure(
    repository: Path, model: str, batch: int, delay: float, levels: list[int], seconds: float
) -> list[Cell]:
    server = start_server_process(
        repository,
        {
            "GENRE_MAX_BATCH_SIZE": str(batch),
            "GENRE_MAX_QUEUE_DELAY_MS": str(delay),
            "GENRE_MAX_QUEUE_ROWS": str(max(8192, batch)),
        },
    )
    target, metrics_port = server.target, server.metrics_port
    cells = []
    try:
        request = feature_request(target, model)
        for concurrency in levels:
            # Warm-up at this level for longer than the batcher remembers the previous level's
            # concurrency (two 1 s windows), so each cell measures a settled server.
            asyncio.run(drive(target, request, concurrency, 2.5))
            rows_before, executions_before = batch_totals(metrics_port)
            latencies, errors = asyncio.run(drive(target, request, concurrency, seconds))
            rows_after, executions_after = batch_totals(metrics_port)
            executions = max(1.0, executions_after - executions_before)
            cells.append(
                Cell(
                    max_batch_size=batch,
                    max_queue_delay_ms=delay,
                    concurrency=concurrency,
                    calls_per_second=len(latencies) / seconds,
                    p50_ms=float(np.percentile(latencies, 50) * 1000),
                    p99_ms=float(np.percentile(latencies, 99) * 1000),
                    mean_batch_rows=(rows_after - rows_before) / executions,
                    errors=errors,
                )
            )
            print(cells[-1], flush=True)
    finally:
        server.stop()
    return cells


def markdown(cells: list[Cell], facts: dict[str, Any]) -> str:
    """The table, headed by the machine the run recorded (not the one rendering it)."""
    lines = [
        f"Measured on {facts['cpu_count']} x {facts['cpu_model']} (load average at start "
        f"{facts['load_average_at_start']}); one row per call, closed loop, client in a separate "
        "process from the server.",
        "",
        "| max_batch_size | max_queue_delay_ms | concurrency | calls/s | p50 ms | p99 ms | "
        "mean batch rows | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(
            f"| {c.max_batch_size} | {c.max_queue_delay_ms:g} | {c.concurrency} | "
            f"{c.calls_per_second:,.0f} | {c.p50_ms:.2f} | {c.p99_ms:.2f} | "
            f"{c.mean_batch_rows:.1f} | {c.errors} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--model", default="gtzan-features-mlp")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--levels", default="1,8,64")
    parser.add_argument("--delays", default="0,1,2,5")
    parser.add_argument("--batches", default="64,256")
    args = parser.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    facts = machine.describe()
    cells: list[Cell] = []
    for batch in (int(v) for v in args.batches.split(",")):
        for delay in (float(v) for v in args.delays.split(",")):
            cells += measure(args.repository, args.model, batch, delay, levels, args.seconds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batching_knobs.json").write_text(
        json.dumps({"machine": facts, "cells": [asdict(c) for c in cells]}, indent=2) + "\n"
    )
    (RESULTS / "batching_knobs.md").write_text(markdown(cells, facts))
    print(markdown(cells, facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
