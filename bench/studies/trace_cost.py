"""What tracing costs a call: ``observe_call`` and a batcher in one process, and a real server.

    .venv/bin/python -m bench.studies.trace_cost             # both parts, results/trace-cost/
    .venv/bin/python -m bench.studies.trace_cost --part micro --calls 20000 --out /tmp/trace-cost

Four cases, every call a one-row ``ClassifyFeatures``:

- ``off``: no ``traceparent``, no ``GENRE_OTLP_ENDPOINT`` (the default);
- ``traceparent``: the caller sends one, no endpoint: only the log line's ``trace_id``;
- ``exported``: the caller's sampled ``traceparent`` and an endpoint: every call's spans (call,
  queue, batch, inference) go to an OTLP receiver in a process of its own
  (``bench.studies.otlp_sink``);
- ``unsampled``: an endpoint, but the caller did not sample (flags 00), as most calls are when
  the edge samples a few in a hundred: the SDK decides, nothing is exported.

*micro*: ``concurrency`` callers in one event loop, each looping ``observe_call`` around
``DynamicBatcher.submit`` of an identity runner, with the access line written to /dev/null; the
process's CPU (every thread: the batcher's, the exporter's) per call, the exporter flushed inside
the measured time. *server*: a ``GENRE_WORKERS`` server on ``gtzan-features-mlp`` driven by
closed-loop callers over several connections from this process; the server's process tree's CPU
per call, from /proc. Cases alternate each round, so drift on a shared machine hits them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bench import machine
from bench.cpu import tree_cpu_seconds
from bench.plan import REPOSITORY_ROOT, RESULTS
from bench.server_process import start_server_process
from bench.studies.otlp_sink import received, sink_process

CASES = ("off", "traceparent", "exported", "unsampled")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"
HEADERS = {
    "off": (),
    "traceparent": (("traceparent", f"00-{TRACE}-01"),),
    "exported": (("traceparent", f"00-{TRACE}-01"),),
    "unsampled": (("traceparent", f"00-{TRACE}-00"),),
}
EXPORTING = {"exported", "unsampled"}
MODEL = "gtzan-features-mlp"
CLASSIFY = "/genre.v1.GenreClassifier/ClassifyFeatures"


class BenchContext:
    """What ``observe_call`` reads of a gRPC call's context, with no gRPC under it."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = (("user-agent", "grpc-python/1.85.1"), *metadata)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50000"

    def set_trailing_metadata(self, metadata: Any) -> None:
        """Nothing to send."""


async def micro_case(case: str, endpoint: str, calls: int, concurrency: int) -> dict[str, Any]:
    from server.batcher import BatcherSettings, DynamicBatcher
    from server.calls import ServingState, observe_call
    from server.metrics import ServerMetrics

    tracing = None
    if case in EXPORTING:  # imported only here: the branch's code, absent from older checkouts
        from server.tracing import start_tracing

        tracing = start_tracing(endpoint, "server")
    state = ServingState(tracing=tracing) if tracing is not None else ServingState()
    metrics = ServerMetrics.create()
    batcher = DynamicBatcher(
        lambda rows: rows, BatcherSettings(256, 0.005, 8192), metrics, ("bench", "1")
    )
    batcher.start()
    context: Any = BenchContext(HEADERS[case])
    row = np.zeros((1, 57), dtype=np.float32)

    async def caller(count: int) -> None:
        for _ in range(count):
            async with observe_call("ClassifyFeatures", context, metrics, state) as call:
                call.model, call.version = "bench", "1"
                result = await batcher.submit(row)
                call.rows, call.batch_rows = 1, result.batch_rows

    await asyncio.gather(*(caller(200) for _ in range(concurrency)))  # warm-up
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller(calls // concurrency) for _ in range(concurrency)))
    if tracing is not None:
        await tracing.close(seconds=60.0)  # its export belongs to these calls
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await batcher.close()
    done = concurrency * (calls // concurrency)
    return {"case": case, "calls": done, "cpu_us_per_call": 1e6 * cpu / done, "wall_s": wall}


def micro(rounds: int, calls: int, concurrency: int, cases: tuple[str, ...]) -> dict[str, Any]:
    from server.logs import configure_logging

    results: list[dict[str, Any]] = []
    with open(os.devnull, "w") as null, sink_process() as (endpoint, sink):
        configure_logging("json", "info", stream=null)
        for round_index in range(rounds):
            order = cases if round_index % 2 == 0 else cases[::-1]
            for case in order:
                load = machine.load_average()
                result = asyncio.run(micro_case(case, endpoint, calls, concurrency))
                results.append({**result, "round": round_index, "load_average_before": load})
                print(f"[trace_cost micro] {results[-1]}", file=sys.stderr, flush=True)
    spans = received(sink)
    return {"concurrency": concurrency, "runs": results, "spans_received": spans}


async def drive(
    target: str, request: bytes, case: str, seconds: float, concurrency: int, channels: int
) -> int:
    """Closed-loop callers for ``seconds``; the calls answered."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    opened = [grpc.aio.insecure_channel(target, options=options) for _ in range(channels)]
    answered = 0
    stopping = False

    async def caller(channel: grpc.aio.Channel) -> None:
        nonlocal answered
        call = channel.unary_unary(CLASSIFY, request_serializer=None, response_deserializer=None)
        while not stopping:
            await call(request, timeout=10, metadata=HEADERS[case])
            answered += 1

    tasks = [asyncio.create_task(caller(opened[i % channels])) for i in range(concurrency)]
    await asyncio.sleep(seconds)
    stopping = True
    await asyncio.gather(*tasks)
    for channel in opened:
        await channel.close(None)
    return answered


def server(
    rounds: int, seconds: float, concurrency: int, workers: int, inference: str
) -> dict[str, Any]:
    from bench.request_bodies import write_requests

    repository = REPOSITORY_ROOT / "models"
    version = max(p for p in (repository / MODEL).iterdir() if p.name.isdigit())
    with tempfile.TemporaryDirectory() as workdir:
        request = write_requests(Path(workdir), version, MODEL)["features-1"].read_bytes()
    env = {
        "GENRE_MODELS": MODEL,
        "GENRE_WORKERS": str(workers),
        "GENRE_INFERENCE_PROCESS": inference,
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
    }
    runs: list[dict[str, Any]] = []
    with sink_process() as (endpoint, sink):
        for round_index in range(rounds):
            for exporting in (False, True) if round_index % 2 == 0 else (True, False):
                settings = {**env, "GENRE_OTLP_ENDPOINT": endpoint if exporting else ""}
                process = start_server_process(repository, settings)
                try:
                    pair = [c for c in CASES if (c in EXPORTING) == exporting]
                    for case in pair if round_index % 2 == 0 else pair[::-1]:
                        asyncio.run(drive(process.target, request, case, 1.0, concurrency, 8))
                        load = machine.load_average()
                        before = tree_cpu_seconds(process.process.pid)
                        calls = asyncio.run(
                            drive(process.target, request, case, seconds, concurrency, 8)
                        )
                        cpu = tree_cpu_seconds(process.process.pid) - before
                        runs.append(
                            {
                                "case": case,
                                "round": round_index,
                                "calls": calls,
                                "calls_per_second": calls / seconds,
                                "cpu_us_per_call": 1e6 * cpu / calls,
                                "load_average_before": load,
                            }
                        )
                        print(f"[trace_cost server] {runs[-1]}", file=sys.stderr, flush=True)
                finally:
                    process.stop()
    return {
        "workers": workers,
        "inference_process": inference,
        "concurrency": concurrency,
        "connections": 8,
        "seconds_per_case": seconds,
        "runs": runs,
        "spans_received": received(sink),
    }


def medians(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    cases = dict.fromkeys(run["case"] for run in runs)
    return {c: statistics.median(r[key] for r in runs if r["case"] == c) for c in cases}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# What tracing costs a call",
        "",
        "`python -m bench.studies.trace_cost` (cases in the module docstring). Machine: "
        f"{result['machine']['cpu_model']}, {result['machine']['cpu_count']} CPUs, shared: "
        "the 1-minute load average before each run is listed.",
    ]
    for part in ("micro", "server"):
        if part not in result:
            continue
        data = result[part]
        cpu = medians(data["runs"], "cpu_us_per_call")
        loads = [run["load_average_before"][0] for run in data["runs"]]
        lines += ["", f"## {part}", ""]
        if part == "micro":
            lines.append(
                f"`observe_call` + `DynamicBatcher.submit` in one process, {data['concurrency']} "
                "callers; the process's CPU per call (median of rounds)."
            )
        else:
            lines.append(
                f"A server of {data['workers']} workers (inference process "
                f"{data['inference_process']}), {data['concurrency']} closed-loop callers over "
                f"{data['connections']} connections, {data['seconds_per_case']:g} s a case; the "
                "server's process tree's CPU per call (median of rounds)."
            )
        lines += [
            "",
            "| case | CPU µs per call | vs off | each round |",
            "|---|---:|---:|---|",
        ]
        for case, value in cpu.items():
            each = ", ".join(
                f"{run['cpu_us_per_call']:.1f}" for run in data["runs"] if run["case"] == case
            )
            delta = value - cpu["off"] if "off" in cpu else float("nan")
            lines.append(f"| {case} | {value:.1f} | {delta:+.1f} | {each} |")
        lines += [
            "",
            f"Spans the receiver got: {data['spans_received']:,}. Load average (1 min) before "
            f"the runs: {min(loads):.1f} to {max(loads):.1f}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--part", choices=("both", "micro", "server"), default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20000, help="micro: calls per run")
    parser.add_argument("--cases", default=",".join(CASES), help="micro: which cases")
    parser.add_argument("--seconds", type=float, default=5.0, help="server: seconds per case")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--inference-process", default="off", choices=("on", "off"))
    parser.add_argument("--out", type=Path, default=RESULTS / "trace-cost")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"machine": machine.describe()}
    if args.part in ("both", "micro"):
        cases = tuple(case for case in args.cases.split(",") if case)
        result["micro"] = micro(args.rounds, args.calls, args.concurrency, cases)
    if args.part in ("both", "server"):
        result["server"] = server(
            args.rounds, args.seconds, args.concurrency, args.workers, args.inference_process
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trace_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "trace_cost.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
