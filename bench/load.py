"""The load generator: one client process, closed loop, perf_analyzer-style windows.

Run as ``python -m bench.load`` with a JSON spec as the first line on stdin; prints one JSON
result on stdout. Every server gets the very same client: a ``grpc.aio`` channel sending
pre-serialised request bytes and taking raw response bytes, so what differs between servers is
the server alone. ``concurrency`` workers each keep exactly one call outstanding. After a
warm-up, fixed windows are measured until the last three agree within the tolerance on both
throughput and p99 (``bench.stability``) or the window cap is reached; figures come from the
stable windows only. The server's ``/metrics`` are scraped right before the first and right
after the last window. The client's CPU is read per window, so a saturated client shows.

A unary spec with ``"coordinated": true`` is one of several processes of one cell
(``bench.clients``): it says ``ready`` once its calls flow, takes the first window's start from
stdin, reports each window on stdout and measures until stdin says stop; the parent merges the
windows of every process and judges stability on the merged ones (``bench.windows``).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc

from bench.audio_load import AudioSpec, run_audio
from bench.channel import CHANNEL_OPTIONS
from bench.scrape import scrape, server_figures
from bench.windows import ClientWindow, judged, summarize


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


class Conductor(Protocol):
    """Who sets the first window's start and ends the measuring: the process itself, or the
    parent of several (``bench.clients``)."""

    async def first_window_at(self, warmup_s: float) -> float: ...

    async def enough(self, window: ClientWindow) -> bool: ...

    async def stopped(self) -> None: ...


class SelfJudged:
    """One process alone: windows start after the warm-up, end when the last ones agree."""

    def __init__(self, spec: UnarySpec) -> None:
        self.spec = spec
        self.windows: list[ClientWindow] = []

    async def first_window_at(self, warmup_s: float) -> float:
        return time.perf_counter() + warmup_s

    async def enough(self, window: ClientWindow) -> bool:
        self.windows.append(window)
        return judged([self.windows], self.spec.tolerance, self.spec.stable_count)[1]

    async def stopped(self) -> None:
        return None


class Coordinated:
    """One of several processes: the start and the stop come over stdin, windows go to stdout."""

    def __init__(self) -> None:
        self._stop: asyncio.Future[str] | None = None

    async def first_window_at(self, warmup_s: float) -> float:
        print(json.dumps({"ready": True}), flush=True)
        start = json.loads(await asyncio.to_thread(sys.stdin.readline))
        self._stop = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
        return float(start["start_at"])

    async def enough(self, window: ClientWindow) -> bool:
        print(json.dumps({"window": window.to_json()}), flush=True)
        return self._stop is not None and self._stop.done()

    async def stopped(self) -> None:
        if self._stop is not None:
            await self._stop


async def run_unary(spec: UnarySpec, conductor: Conductor | None = None) -> dict[str, Any]:
    judge = conductor or SelfJudged(spec)
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
        first = await judge.first_window_at(spec.warmup_s)
        await asyncio.sleep(max(0.0, first - time.perf_counter()))
        before = await asyncio.to_thread(scrape, spec.metrics_port)
        windows: list[ClientWindow] = []
        index, moment, cpu = len(ends), time.perf_counter(), _cpu_seconds()
        while len(windows) < spec.max_windows:
            boundary = first + (len(windows) + 1) * spec.window_s  # shared by every process
            await asyncio.sleep(max(0.0, boundary - time.perf_counter()))
            next_index, now, next_cpu = len(ends), time.perf_counter(), _cpu_seconds()
            window = ClientWindow(
                start=moment,
                end=now,
                latencies=tuple(latencies[index:next_index]),
                errors=Counter(code for at, code in errors if moment < at <= now),
                cpu_seconds=next_cpu - cpu,
            )
            windows.append(window)
            index, moment, cpu = next_index, now, next_cpu
            if await judge.enough(window):
                break
        after = await asyncio.to_thread(scrape, spec.metrics_port)
        await judge.stopped()
        stopping = True
        await asyncio.gather(*workers)
    totals = {"calls_total": len(ends), "errors_total": len(errors)}
    if conductor is not None:
        return {**totals, **server_figures(before, after)}
    return {
        "concurrency": spec.concurrency,
        "rows_per_call": spec.rows_per_call,
        **summarize([windows], spec.rows_per_call, spec.tolerance, spec.stable_count),
        **totals,
        **server_figures(before, after),
    }


def main() -> int:
    raw = json.loads(sys.stdin.readline())
    kind = raw.pop("kind")
    coordinated = bool(raw.pop("coordinated", False))
    if kind == "unary":
        raw["extra_targets"] = tuple(raw.get("extra_targets", ()))
        conductor = Coordinated() if coordinated else None
        result = asyncio.run(run_unary(UnarySpec(**raw), conductor))
        if coordinated:
            result = {"result": result}
    elif kind == "audio":
        result = asyncio.run(run_audio(AudioSpec(**raw)))
    else:
        raise SystemExit(f"unknown load kind {kind!r}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
