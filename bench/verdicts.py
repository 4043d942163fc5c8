"""What a run's results mean: the issue's targets, their verdicts, and why a missed one missed.

Every explanation is computed from the run's own record (its cells, its audio figures and the
machine facts ``bench.machine`` wrote into the JSON), so a report rendered for a 16-core GPU
machine talks about 16 cores and a GPU, and one for the 2-core VM about 2 cores. Nothing here
is a sentence written for one particular run.

Cells carry the number of serving processes they ran with (``workers``; runs from before there
were workers have none and ran one). A ratio only ever compares cells of the same count, and
every features target is judged once per count the run measured.
"""

from __future__ import annotations

import math
import re
from typing import Any

Results = dict[str, Any]


def workers_of(cell: dict[str, Any]) -> int:
    return int(cell.get("workers", 1))


def worker_counts(results: Results) -> list[int]:
    """The serving process counts the run's cells measured, ascending ([1] for older runs)."""
    return sorted({workers_of(cell) for cell in results.get("cells", [])}) or [1]


def workers_label(workers: int, results: Results) -> str:
    """The ", 2 workers" in a target's name; nothing when the run measured one process only, so
    such a run's targets keep the names of the runs before workers existed."""
    if worker_counts(results) == [1]:
        return ""
    return f", {workers} worker" + ("" if workers == 1 else "s")


def lookup(
    results: Results, scenario: str, server: str, level: int, workers: int = 1
) -> dict[str, Any] | None:
    """The measured cell, or None when it was not run or failed."""
    wanted = (scenario, server, level, workers)
    for cell in results.get("cells", []):
        if (cell["scenario"], cell["server"], cell["concurrency"], workers_of(cell)) == wanted:
            return None if "failed" in cell else cell
    return None


def throughput_key(scenario: str) -> str:
    return "calls_per_second" if scenario == "features-1" else "rows_per_second"


def ratio(
    results: Results, scenario: str, a: str, b: str, level: int, workers: int = 1
) -> float | None:
    """Server ``a``'s throughput over ``b``'s, both at ``level`` with ``workers`` processes."""
    key = throughput_key(scenario)
    first = lookup(results, scenario, a, level, workers)
    second = lookup(results, scenario, b, level, workers)
    if first is None or second is None or second[key] <= 0:
        return None
    return float(first[key] / second[key])


def offline_at_served_batch(audio: dict[str, Any]) -> tuple[int, float] | None:
    """The runner's offline windows/s at the measured batch size nearest the server's mean batch."""
    fast = audio.get("fast_many")
    if not fast or "failed" in fast:
        return None
    offline = {int(k): float(v) for k, v in audio["offline_windows_per_second"].items()}
    batch = fast.get("mean_batch_rows") or 1.0
    nearest = min(offline, key=lambda size: abs(math.log(size) - math.log(batch)))
    return nearest, offline[nearest]


def audio_ratio(audio: dict[str, Any] | None) -> float | None:
    """Flat-out streaming windows/s over offline windows/s at the batch size the server ran."""
    offline = offline_at_served_batch(audio) if audio else None
    if audio is None or offline is None:
        return None
    return float(audio["fast_many"]["windows_per_second"] / offline[1])


def targets(results: Results) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it was met (None: not run)."""
    verdicts: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: float, workers: int | None = None) -> None:
        met = None if value is None else value >= goal
        verdict = {"target": name, "value": value, "goal": goal, "met": met}
        verdicts.append(verdict if workers is None else {**verdict, "workers": workers})

    for workers in worker_counts(results):
        one = f"features 1 row/call{workers_label(workers, results)}"
        for level in (64, 256):
            echo = ratio(results, "features-1", "ours", "echo", level, workers)
            add(f"{one}, c={level}: ours / echo >= 0.85", echo, 0.85, workers)
        for level in (1, 8):
            peer = ratio(results, "features-1", "ours", "torchserve", level, workers)
            add(f"{one}, c={level}: ours / TorchServe >= 2", peer, 2.0, workers)
        ratios = [
            ratio(results, "features-1", "ours", "torchserve", level, workers)
            for level in _levels(results, "features-1", "torchserve", workers)
        ]
        known = [r for r in ratios if r is not None]
        lowest = min(known) if known else None
        add(f"{one}: ours / TorchServe >= 1 at every level", lowest, 1.0, workers)
        for server, named in (("ours", ""), ("ours-bf16", " (opt-in bfloat16)")):
            bulk = [c["rows_per_second"] for c in _cells(results, "features-256", server, workers)]
            add(
                f"features 256 rows/call{workers_label(workers, results)}{named}: "
                "rows/s >= 100,000",
                max(bulk) if bulk else None,
                100_000,
                workers,
            )
        if "ours-v2" in results.get("plan", {}).get("servers", ()):  # issue #16, where measured
            for scenario, unit in (("features-1", "calls/s"), ("features-256", "rows/s")):
                shares = [
                    ratio(results, scenario, "ours-v2", "ours", level, workers)
                    for level in _levels(results, scenario, "ours-v2", workers)
                ]
                measured = [share for share in shares if share is not None]
                add(
                    f"{scenario}{workers_label(workers, results)}: Open Inference Protocol / "
                    f"genre.v1 {unit} >= 0.9 at every level",
                    min(measured) if measured else None,
                    0.9,
                    workers,
                )
    add("audio: streaming / offline windows/s >= 0.8", audio_ratio(results.get("audio")), 0.8)
    add(
        f"audio: real-time streams with p99 under {REALTIME_P99_MS:.0f} ms >= {REALTIME_STREAMS}",
        sustained_streams(results.get("audio")),
        REALTIME_STREAMS,
    )
    return verdicts


# Issue #14: the stream path keeps up with this many live sources, each window answered in time.
REALTIME_STREAMS = 16
REALTIME_P99_MS = 250.0


def sustained_streams(audio: dict[str, Any] | None) -> float | None:
    """The most real-time streams held under the p99 bound; None when no cell reached the goal's
    count and none failed (the run did not try enough streams to tell)."""
    if not audio or not audio.get("realtime"):
        return None
    sustained = float(audio.get("sustained_streams", 0))
    tried = [c for c in audio["realtime"] if "failed" not in c]
    failed = len(tried) < len(audio["realtime"]) or any(not _held(c) for c in tried)
    if sustained < REALTIME_STREAMS and not failed:
        return None
    return sustained


def _held(cell: dict[str, Any]) -> bool:
    p99 = cell.get("p99_ms")
    return not cell["errors"] and p99 is not None and p99 < REALTIME_P99_MS


def _first_missed(audio: dict[str, Any]) -> dict[str, Any] | None:
    cells: list[dict[str, Any]] = audio.get("realtime", [])
    return next((cell for cell in cells if "failed" in cell or not _held(cell)), None)


def _levels(results: Results, scenario: str, server: str, workers: int) -> list[int]:
    return [
        c["concurrency"]
        for c in results.get("cells", [])
        if c["scenario"] == scenario and c["server"] == server and workers_of(c) == workers
    ]


def _cells(results: Results, scenario: str, server: str, workers: int) -> list[dict[str, Any]]:
    """The measured (not failed) cells of one server with ``workers`` processes."""
    return [
        c
        for c in results.get("cells", [])
        if (c["scenario"], c["server"], workers_of(c)) == (scenario, server, workers)
        and "failed" not in c
    ]


def _event_loops(workers: int) -> str:
    return "one asyncio event loop" if workers == 1 else f"{workers} workers' asyncio event loops"


def _cores(results: Results) -> str:
    count = results["machine"]["cpu_count"]
    return f"{count} core" + ("" if count == 1 else "s")


def _busy(cell: dict[str, Any], calls_per_second: float) -> float | None:
    """Cores the server's process tree kept busy: CPU per call times calls per second."""
    cpu = cell.get("server_cpu_us_per_call")
    return None if cpu is None else float(cpu) * 1e-6 * calls_per_second


def serving_device(results: Results) -> str:
    """Where the models ran: recorded by the run, else the audio runner's device, else the CPU."""
    device = results.get("device") or (results.get("audio") or {}).get("device") or "cpu"
    gpu = results["machine"].get("gpu")
    return f"{device} ({gpu})" if gpu and str(device).startswith("cuda") else str(device)


def cpu_split(cell: dict[str, Any]) -> str:
    """How a cell's server CPU split over its serving processes, as "52/48%" ("" if unknown)."""
    shares = cell.get("process_cpu_shares")
    if not shares:
        return ""
    return "/".join(f"{100 * share:.0f}" for share in shares) + "%"


def _server_cpu_gap(results: Results, level: int, workers: int) -> str:
    ours = lookup(results, "features-1", "ours", level, workers)
    echo = lookup(results, "features-1", "echo", level, workers)
    if ours is None or echo is None:
        return ""
    ours_busy = _busy(ours, ours["calls_per_second"])
    echo_busy = _busy(echo, echo["calls_per_second"])
    if ours_busy is None or echo_busy is None:
        return ""
    ours_cpu, echo_cpu = ours["server_cpu_us_per_call"], echo["server_cpu_us_per_call"]
    text = (
        f"at c={level} the server spent {ours_cpu:,.0f} µs of CPU per call against the echo's "
        f"{echo_cpu:,.0f} µs ({ours_cpu / echo_cpu:.1f}x) and kept {ours_busy:.2f} of the "
        f"machine's {_cores(results)} busy (the echo {echo_busy:.2f}): the extra per-call work "
        f"runs in the server's {_event_loops(workers)}"
    )
    if cpu_split(ours) and cpu_split(echo):
        text += f", whose CPU split {cpu_split(ours)} (the echo's {cpu_split(echo)})"
    return text


def _torchserve_gap(results: Results, target: str, workers: int) -> str:
    named = re.search(r"c=(\d+)", target)
    if named:
        level = int(named.group(1))
    else:
        scored = [
            (r, level)
            for level in _levels(results, "features-1", "torchserve", workers)
            if (r := ratio(results, "features-1", "ours", "torchserve", level, workers)) is not None
        ]
        if not scored:
            return ""
        level = min(scored)[1]
    ours = lookup(results, "features-1", "ours", level, workers)
    theirs = lookup(results, "features-1", "torchserve", level, workers)
    if ours is None or theirs is None:
        return ""
    ours_busy = _busy(ours, ours["calls_per_second"])
    theirs_busy = _busy(theirs, theirs["calls_per_second"])
    if ours_busy is None or theirs_busy is None:
        return ""
    return (
        f"at c={level} TorchServe's processes (Java front-end, Python workers) kept "
        f"{theirs_busy:.2f} of the machine's {_cores(results)} busy "
        f"({theirs['server_cpu_us_per_call']:,.0f} µs per call at "
        f"{theirs['calls_per_second']:,.0f} calls/s), ours {ours_busy:.2f} in "
        f"{_event_loops(workers)} ({ours['server_cpu_us_per_call']:,.0f} µs per call at "
        f"{ours['calls_per_second']:,.0f} calls/s)"
    )


def _bulk_gap(results: Results, server: str, workers: int) -> str:
    cells = _cells(results, "features-256", server, workers)
    if not cells:
        return ""
    best = max(cells, key=lambda c: c["rows_per_second"])
    busy = _busy(best, best["calls_per_second"])
    if busy is None:
        return ""
    cpu, rows = best["server_cpu_us_per_call"], best["rows_per_call"]
    return (
        f"best {best['rows_per_second']:,.0f} rows/s at c={best['concurrency']}: the server spent "
        f"{cpu:,.0f} µs of CPU per {rows}-row call ({cpu / rows:.1f} µs per row) and kept "
        f"{busy:.2f} of the machine's "
        f"{_cores(results)} busy; the forward pass ran on {serving_device(results)}"
    )


def _audio_gap(results: Results) -> str:
    audio = results.get("audio")
    offline = offline_at_served_batch(audio) if audio else None
    value = audio_ratio(audio)
    if audio is None or offline is None or value is None:
        return ""
    fast = audio["fast_many"]
    batch, offline_rate = offline
    text = (
        f"{fast['streams']} streams sent flat out reached {fast['windows_per_second']:,.0f} "
        f"windows/s at a mean batch of {fast['mean_batch_rows']:.1f}; the runner alone on "
        f"{serving_device(results)} does {offline_rate:,.0f} at batch {batch}"
    )
    if str(audio.get("device", "cpu")).startswith("cpu"):
        return (
            text + f"; here the forward pass, the server's event loop and the client's "
            f"{fast['streams']} streams all share the machine's {_cores(results)}"
        )
    return (
        text + f": at that rate the forward passes need about {value:.0%} of the device's time, "
        "so the limit lies outside them, on the CPU side (one event loop for every stream, "
        f"on a machine of {_cores(results)})"
    )


def _streams_gap(results: Results) -> str:
    audio = results.get("audio")
    missed = _first_missed(audio) if audio else None
    if audio is None or missed is None:
        return ""
    if "failed" in missed:
        return f"the real-time cell after {audio.get('sustained_streams', 0)} streams failed: " + (
            str(missed["failed"])
        )
    text = (
        f"at {missed['streams']} streams p50 {missed['p50_ms']:,.0f} ms, p99 "
        f"{missed['p99_ms']:,.0f} ms"
    )
    if missed["errors"]:
        text += f", errors {missed['errors']}"
    batch = missed.get("mean_batch_rows")
    offline = {int(k): float(v) for k, v in audio["offline_windows_per_second"].items()}
    if not batch or not offline:
        return text
    nearest = min(offline, key=lambda size: abs(math.log(size) - math.log(batch)))
    rate = offline[nearest]
    threads = audio.get("torch_threads")
    on = f"{serving_device(results)}" + (f" with {threads} torch thread(s)" if threads else "")
    text += f", mean batch {batch:.1f} windows"
    hop = audio.get("hop_seconds")
    if hop:
        asked = missed["streams"] / float(hop)
        text += (
            f": the streams asked for {asked:,.1f} windows/s ({missed['streams']} every "
            f"{float(hop):g} s), {asked / rate:.0%} of the {rate:,.1f} windows/s the runner "
            f"alone does on {on} at batch {nearest} (about {1000 / rate:,.0f} ms a window), "
            "so windows that complete together wait behind each other"
        )
    else:
        text += f"; the runner alone does {rate:,.1f} windows/s on {on} at batch {nearest}"
    if not str(audio.get("device", "cpu")).startswith("cuda"):
        text += f"; model, event loop and client share the machine's {_cores(results)}"
    return text


def gap_cause(target: str, results: Results) -> str:
    """Why ``target`` was missed, in the run's own figures ("" when the run lacks them)."""
    counted = re.search(r", (\d+) workers?\b", target)
    workers = int(counted.group(1)) if counted else 1
    if "ours / echo" in target:
        named = re.search(r"c=(\d+)", target)
        return _server_cpu_gap(results, int(named.group(1)) if named else 64, workers)
    if "TorchServe" in target:
        return _torchserve_gap(results, target, workers)
    if "256 rows" in target:
        return _bulk_gap(results, "ours-bf16" if "bfloat16" in target else "ours", workers)
    if target.startswith("audio: real-time"):
        return _streams_gap(results)
    if target.startswith("audio"):
        return _audio_gap(results)
    return ""
