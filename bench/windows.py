"""Measurement windows from one or several client processes: merged, judged, summed up.

A cell's load may come from several ``bench.load`` processes, each with its share of the
concurrency, so that no single client process is the bottleneck. Their windows share boundaries
(``bench.clients`` gives every process the same start on the system-wide monotonic clock), so
window ``k`` of every process covers the same stretch of time. Merged, a window's throughput is
the sum of the processes' rates and its p99 is taken over every call any process completed in
it. perf_analyzer's stopping rule (``bench.stability``) then runs on the merged windows, and the
figures come from the stable ones only, as they did with one process.

A client process's CPU is read per window, so its share of a core over the kept windows says
whether it could keep up: a process at >= ``SATURATED_CPU_FRACTION`` of a core measured itself,
not the server, and the cell is invalid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.stability import WindowStats, is_stable, percentiles_ms

SATURATED_CPU_FRACTION = 0.9


@dataclass(frozen=True)
class ClientWindow:
    """One client process's window: its bounds (``time.perf_counter``, CLOCK_MONOTONIC on Linux
    and so comparable across processes), the latencies (s) of the calls it completed in it, the
    errors it got (status name -> count) and the CPU seconds the process used meanwhile."""

    start: float
    end: float
    latencies: tuple[float, ...]
    errors: Mapping[str, int]
    cpu_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "latencies": list(self.latencies), "errors": dict(self.errors)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClientWindow:
        return cls(
            start=float(data["start"]),
            end=float(data["end"]),
            latencies=tuple(float(value) for value in data["latencies"]),
            errors={str(code): int(count) for code, count in data["errors"].items()},
            cpu_seconds=float(data["cpu_seconds"]),
        )


def merged_stats(windows: Sequence[ClientWindow]) -> WindowStats:
    """Window ``k`` of every process as one: summed calls/s, p99 over every call."""
    throughput = sum(len(w.latencies) / (w.end - w.start) for w in windows if w.end > w.start)
    pooled = [latency for window in windows for latency in window.latencies]
    return WindowStats(
        throughput=throughput, p99_ms=percentiles_ms(pooled)["p99_ms"] if pooled else 0.0
    )


def judged(
    per_client: Sequence[Sequence[ClientWindow]], tolerance: float = 0.1, count: int = 3
) -> tuple[list[WindowStats], bool]:
    """The merged windows up to the first stable run (all of them if none), and whether the run
    ended stable: the windows a single process judging itself would have measured."""
    measured = min((len(windows) for windows in per_client), default=0)
    stats: list[WindowStats] = []
    for index in range(measured):
        stats.append(merged_stats([windows[index] for windows in per_client]))
        if is_stable(stats, tolerance, count):
            return stats, True
    return stats, False


def saturated(fractions: Sequence[float]) -> str | None:
    """Why a cell is invalid (a client process at >= 90% of a core), or None."""
    worst = max(range(len(fractions)), key=lambda i: fractions[i], default=None)
    if worst is None or fractions[worst] < SATURATED_CPU_FRACTION:
        return None
    return (
        f"client process {worst + 1} of {len(fractions)} used {fractions[worst]:.0%} of a core "
        f"(>= {SATURATED_CPU_FRACTION:.0%}): the client, not the server, set the pace"
    )


def summarize(
    per_client: Sequence[Sequence[ClientWindow]],
    rows_per_call: int,
    tolerance: float = 0.1,
    count: int = 3,
) -> dict[str, Any]:
    """A cell's figures from its processes' windows, over the kept (stable or last) windows.

    Calls/s is the sum of each process's calls over its own span of the kept windows; the
    percentiles pool every kept call; ``client_cpu_fractions`` is each process's CPU over the
    same span, and ``invalid`` says why the cell does not count (absent when it does).
    """
    stats, stable = judged(per_client, tolerance, count)
    if not stats:
        raise ValueError("no window was measured by every client process")
    kept = range(max(0, len(stats) - count), len(stats))
    rates: list[float] = []
    fractions: list[float] = []
    pooled: list[float] = []
    errors: Counter[str] = Counter()
    for windows in per_client:
        span = windows[kept[-1]].end - windows[kept[0]].start
        calls = sum(len(windows[k].latencies) for k in kept)
        rates.append(calls / span)
        fractions.append(sum(windows[k].cpu_seconds for k in kept) / span)
        for k in kept:
            pooled.extend(windows[k].latencies)
            errors.update(windows[k].errors)
    calls_per_second = sum(rates)
    result: dict[str, Any] = {
        "calls_per_second": calls_per_second,
        "rows_per_second": calls_per_second * rows_per_call,
        **percentiles_ms(pooled),
        "calls": len(pooled),
        "errors": dict(errors),
        "stable": stable,
        "windows": [asdict(window) for window in stats],
        "client_processes": len(per_client),
        "client_cpu_fractions": fractions,
        "client_cpu_fraction": max(fractions),
    }
    reason = saturated(fractions)
    if reason is not None:
        result["invalid"] = reason
    return result
