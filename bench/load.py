"""The load generator: one client process, closed loop, perf_analyzer-style windows.

Run by ``bench.run`` as ``python -m bench.load`` with a JSON spec on stdin; prints one JSON
result on stdout. Every server gets the very same client: a ``grpc.aio`` channel sending
pre-serialised request bytes and taking raw response bytes, so what differs between servers is
the server alone. ``concurrency`` workers each keep exactly one call outstanding. After a
warm-up, fixed windows are measured until the last three agree within the tolerance on both
throughput and p99 (``bench.stability``) or the window cap is reached; figures come from the
stable windows only. The server's ``/metrics`` are scraped right before the first and right
after the last window. The client's own CPU use is recorded, so a saturated client shows.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc

from bench.audio_load import AudioSpec, run_audio
from bench.channel import CHANNEL_OPTIONS
from bench.scrape import scrape, server_figures
from bench.stability import WindowStats, is_stable, percentiles_ms


@dataclass(frozen=True)
class UnarySpec:
    target: str
    method: str
    request_file: str
    rows_per_call: int
    concurrency: int
    warmup_s: float = 2.5
    window_s: float = 2.0
    max_windows: int = 8
    tolerance: float = 0.1
    stable_count: int = 3
    timeout_s: float = 10.0
    metrics_port: int = 0
    # Several connections (each channel its own, not grpc's shared subchannel pool), dealt
    # round-robin over ``target`` and ``extra_targets``: how a client spreads its calls over
    # server processes. The workers take the channels in turn.
    channels: int = 1
    extra_targets: tuple[str, ...] = ()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_unary(spec: UnarySpec) -> dict[str, Any]:
    request = await asyncio.to_thread(Path(spec.request_file).read_bytes)
    ends = array.array("d")
    latencies = array.array("d")
    errors: list[tuple[float, str]] = []
    stopping = False
    targets = (spec.target, *spec.extra_targets)
    options = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
    async with contextlib.AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(
                grpc.aio.insecure_channel(targets[i % len(targets)], options=options)
            )
            for i in range(max(1, spec.channels))
        ]
        # bytes in, bytes out: no client-side protobuf work
        calls = [
            channel.unary_unary(spec.method, request_serializer=None, response_deserializer=None)
            for channel in opened
        ]

        async def worker(call: Any) -> None:
            while not stopping:
                started = time.perf_counter()
                try:
                    await call(request, timeout=spec.timeout_s)
                except grpc.aio.AioRpcError as error:
                    errors.append((time.perf_counter(), error.code().name))
                    if error.code() == grpc.StatusCode.UNAVAILABLE:
                        await asyncio.sleep(0.01)
                    continue
                done = time.perf_counter()
                ends.append(done)
                latencies.append(done - started)

        workers = [
            asyncio.create_task(worker(calls[i % len(calls)])) for i in range(spec.concurrency)
        ]
        await asyncio.sleep(spec.warmup_s)
        before = await asyncio.to_thread(scrape, spec.metrics_port)
        cpu_started, wall_started = _cpu_seconds(), time.perf_counter()
        windows: list[WindowStats] = []
        bounds: list[tuple[int, int, float, float]] = []
        index, moment = len(ends), time.perf_counter()
        while len(windows) < spec.max_windows:
            await asyncio.sleep(spec.window_s)
            next_index, now = len(ends), time.perf_counter()
            window = latencies[index:next_index]
            windows.append(
                WindowStats(
                    throughput=(next_index - index) / (now - moment),
                    p99_ms=percentiles_ms(window)["p99_ms"] if len(window) else 0.0,
                )
            )
            bounds.append((index, next_index, moment, now))
            index, moment = next_index, now
            if is_stable(windows, spec.tolerance, spec.stable_count):
                break
        cpu_used, wall_used = _cpu_seconds() - cpu_started, time.perf_counter() - wall_started
        after = await asyncio.to_thread(scrape, spec.metrics_port)
        stopping = True
        await asyncio.gather(*workers)
    kept = bounds[-spec.stable_count :]
    first, last = kept[0][0], kept[-1][1]
    seconds = kept[-1][3] - kept[0][2]
    window_errors = Counter(code for at, code in errors if kept[0][2] <= at <= kept[-1][3])
    calls_per_second = (last - first) / seconds
    return {
        "concurrency": spec.concurrency,
        "rows_per_call": spec.rows_per_call,
        "calls_per_second": calls_per_second,
        "rows_per_second": calls_per_second * spec.rows_per_call,
        **percentiles_ms(latencies[first:last]),
        "calls": last - first,
        "calls_total": len(ends),
        "errors": dict(window_errors),
        "errors_total": len(errors),
        "stable": is_stable(windows, spec.tolerance, spec.stable_count),
        "windows": [asdict(w) for w in windows],
        "client_cpu_fraction": cpu_used / wall_used,
        **server_figures(before, after),
    }


def main() -> int:
    raw = json.loads(sys.stdin.read())
    kind = raw.pop("kind")
    if kind == "unary":
        raw["extra_targets"] = tuple(raw.get("extra_targets", ()))
        result = asyncio.run(run_unary(UnarySpec(**raw)))
    elif kind == "audio":
        result = asyncio.run(run_audio(AudioSpec(**raw)))
    else:
        raise SystemExit(f"unknown load kind {kind!r}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
