"""Why a missed target missed, in the run's own figures.

Every explanation is computed from the run's own record (its cells, its audio figures and the
machine facts ``bench.machine`` wrote into the JSON), so a report rendered for a 16-core GPU
machine talks about 16 cores and a GPU, and one for the 2-core VM about 2 cores. Nothing here
is a sentence written for one particular run.
"""

from __future__ import annotations

import math
import re
from typing import Any

from bench.report.cells import Results, cells_of, levels, lookup, ratio
from bench.verdicts import (
    ISSUE_24,
    OUR_PROTOCOLS,
    PEER_NAMES,
    audio_ratio,
    first_missed,
    offline_at_served_batch,
)


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
            for level in levels(results, "features-1", "torchserve", workers)
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
    cells = cells_of(results, "features-256", server, workers)
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
    missed = first_missed(audio) if audio else None
    if audio is None or missed is None:
        return ""
    if "failed" in missed:
        return f"the real-time cell after {audio.get('sustained_streams', 0)} streams failed: " + (
            str(missed["failed"])
        )
    if "invalid" in missed:
        return f"the search stopped at {missed['streams']} streams: {missed['invalid']}"
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


def _side(cell: dict[str, Any], key: str, unit: str, cores: str) -> str:
    """ "1,931 calls/s at 480 µs of server CPU per call, 0.93 of 2 cores busy" for one cell."""
    text = f"{cell[key]:,.0f} {unit}"
    busy = _busy(cell, cell["calls_per_second"])
    if busy is not None:
        text += (
            f" at {cell['server_cpu_us_per_call']:,.0f} µs of server CPU per call, "
            f"{busy:.2f} of {cores} busy"
        )
    return text


def _peer_gap(results: Results, scenario: str, peer: str, workers: int) -> str:
    """Where ours fell furthest behind ``peer``: the level and protocol, both sides' figures."""
    scored = [
        (value, level, ours)
        for level in levels(results, scenario, peer, workers)
        for ours in OUR_PROTOCOLS
        if (value := ratio(results, scenario, ours, peer, level, workers)) is not None
    ]
    if not scored:
        return ""
    _, level, ours = min(scored)
    mine = lookup(results, scenario, ours, level, workers)
    theirs = lookup(results, scenario, peer, level, workers)
    if mine is None or theirs is None:
        return ""
    key, unit = (
        ("calls_per_second", "calls/s")
        if scenario == "features-1"
        else ("rows_per_second", "rows/s")
    )
    protocol = "genre.v1" if ours == "ours" else "the Open Inference Protocol"
    cores = _cores(results)
    return (
        f"furthest behind at c={level} over {protocol}: {PEER_NAMES[peer]} "
        f"{_side(theirs, key, unit, cores)}; ours {_side(mine, key, unit, cores)}"
    )


def _p99_gap(results: Results, level: int, workers: int) -> str:
    peers = {
        named: cell
        for peer, named in PEER_NAMES.items()
        if (cell := lookup(results, "features-1", peer, level, workers)) is not None
    }
    ours = {
        server: cell
        for server in OUR_PROTOCOLS
        if (cell := lookup(results, "features-1", server, level, workers)) is not None
    }
    if not peers or not ours:
        return ""
    best = min(peers, key=lambda named: peers[named]["p99_ms"])
    text = (
        f"at c={level} the best peer, {best}, answered with p99 {peers[best]['p99_ms']:,.1f} ms; "
    )
    parts = []
    for server, cell in ours.items():
        protocol = "genre.v1" if server == "ours" else "v2"
        queue = cell.get("mean_queue_ms")
        waited = f", {queue:,.1f} ms of it queued on average" if queue is not None else ""
        parts.append(f"ours over {protocol} {cell['p99_ms']:,.1f} ms{waited}")
    return text + "; ".join(parts)


def _issue_24_gap(target: str, results: Results, workers: int) -> str:
    scenario = "features-256" if "256 rows" in target else "features-1"
    if "ours / echo" in target:
        named = re.search(r"c=(\d+)", target)
        return _server_cpu_gap(results, int(named.group(1)) if named else 64, workers)
    if "p99" in target:
        return _p99_gap(results, 256, workers)
    peer = next((peer for peer, named in PEER_NAMES.items() if f"/ {named} " in target), None)
    return _peer_gap(results, scenario, peer, workers) if peer else ""


def gap_cause(target: str, results: Results) -> str:
    """Why ``target`` was missed, in the run's own figures ("" when the run lacks them)."""
    counted = re.search(r", (\d+) workers?\b", target)
    workers = int(counted.group(1)) if counted else 1
    if target.startswith(ISSUE_24):
        return _issue_24_gap(target, results, workers)
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
