"""What a run's results mean: the issues' targets and their verdicts (why a missed one missed:
``bench.report.gaps``).

Every features target is judged once per serving-process count the run measured, from cells
that count (``bench.report.cells``: neither failed nor made invalid by a saturated client).
"""

from __future__ import annotations

import math
from typing import Any

from bench.report.cells import (
    Results,
    cells_of,
    find,
    levels,
    lookup,
    ratio,
    why_not_counted,
    worker_counts,
    workers_label,
)


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
    """The issues' targets, each with the measured value and whether it was met (None: not run,
    or not judged: see ``missing``); issue #24's last."""
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
            for level in levels(results, "features-1", "torchserve", workers)
        ]
        known = [r for r in ratios if r is not None]
        lowest = min(known) if known else None
        add(f"{one}: ours / TorchServe >= 1 at every level", lowest, 1.0, workers)
        for server, named in (("ours", ""), ("ours-bf16", " (opt-in bfloat16)")):
            bulk = [
                c["rows_per_second"] for c in cells_of(results, "features-256", server, workers)
            ]
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
                    for level in levels(results, scenario, "ours-v2", workers)
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
    return [*verdicts, *issue_24_targets(results)]


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
    held = not cell["errors"] and p99 is not None and p99 < REALTIME_P99_MS
    return held and "invalid" not in cell


def first_missed(audio: dict[str, Any]) -> dict[str, Any] | None:
    cells: list[dict[str, Any]] = audio.get("realtime", [])
    return next((cell for cell in cells if "failed" in cell or not _held(cell)), None)


# Issue #24, one row per call: ahead of the peers at every level over both of our protocols;
# the bar is TorchServe and MLServer, Triton's ratio is reported beside them.
PEER_NAMES = {"torchserve": "TorchServe", "triton": "Triton", "mlserver": "MLServer"}
BARRED_PEERS = ("torchserve", "mlserver")
OUR_PROTOCOLS = ("ours", "ours-v2")
ISSUE_24_LEVELS = (1, 8, 64, 256)
ISSUE_24 = "issue 24"


def _verdict(
    name: str, value: float | None, goal: float | None, missing: list[str], workers: int
) -> dict[str, Any]:
    """``goal`` None: a figure reported beside the targets, judged against nothing. A value that
    meets its goal with cells missing (not run, failed, invalid) is not judged met."""
    met = None if value is None or goal is None else value >= goal
    if met and missing:
        met = None
    verdict = {"target": name, "value": value, "goal": goal, "met": met, "workers": workers}
    return {**verdict, "missing": missing} if missing else verdict


def _missing(
    results: Results, scenario: str, servers: tuple[str, ...], level: int, workers: int
) -> list[str]:
    """ "ours-v2 c=256 invalid" for each of ``servers`` whose cell does not count."""
    found = [find(results, scenario, server, level, workers) for server in servers]
    reasons = [why_not_counted(cell) for cell in found]
    return [f"{s} c={level} {why}" for s, why in zip(servers, reasons, strict=True) if why]


def _lowest_against(
    results: Results, scenario: str, peer: str, wanted: tuple[int, ...], workers: int
) -> tuple[float | None, list[str]]:
    """The lowest ours / ``peer`` ratio over ``wanted`` levels and both of our protocols, and
    the cells that lacked for the rest."""
    found: list[float] = []
    missing: list[str] = []
    for level in wanted:
        missing += _missing(results, scenario, (peer, *OUR_PROTOCOLS), level, workers)
        for ours in OUR_PROTOCOLS:
            value = ratio(results, scenario, ours, peer, level, workers)
            if value is not None:
                found.append(value)
    return (min(found) if found else None), missing


def _p99_against_best_peer(
    results: Results, level: int, workers: int
) -> tuple[float | None, list[str]]:
    """The best (lowest) peer p99 over our worse one at ``level``: >= 1 when ours is no worse."""
    peers = [lookup(results, "features-1", peer, level, workers) for peer in PEER_NAMES]
    ours = [lookup(results, "features-1", server, level, workers) for server in OUR_PROTOCOLS]
    missing = _missing(results, "features-1", OUR_PROTOCOLS, level, workers)
    measured = [cell["p99_ms"] for cell in ours if cell is not None]
    best = min((cell["p99_ms"] for cell in peers if cell is not None), default=None)
    if best is None or not measured:
        return None, missing
    return best / max(measured), missing


def _one_row_targets(results: Results, workers: int) -> list[dict[str, Any]]:
    one = f"{ISSUE_24}, features 1 row/call{workers_label(workers, results)}"
    at = "c=" + ", ".join(map(str, ISSUE_24_LEVELS[:-1])) + f" and {ISSUE_24_LEVELS[-1]}"
    verdicts = []
    for peer, named in PEER_NAMES.items():
        value, missing = _lowest_against(results, "features-1", peer, ISSUE_24_LEVELS, workers)
        if peer in BARRED_PEERS:
            name, goal = f"{one}: ours / {named} >= 1 at {at}, both protocols", 1.0
        else:
            name, goal = f"{one}: ours / {named} at {at}, both protocols (reported)", None
        verdicts.append(_verdict(name, value, goal, missing, workers))
    for level in (64, 256):
        echo = ratio(results, "features-1", "ours", "echo", level, workers)
        missing = _missing(results, "features-1", ("ours", "echo"), level, workers)
        name = f"{one}, c={level}: ours / echo >= 0.6"
        verdicts.append(_verdict(name, echo, 0.6, missing, workers))
    value, missing = _p99_against_best_peer(results, 256, workers)
    name = f"{one}, c=256: best peer's p99 / ours, both protocols >= 1"
    return [*verdicts, _verdict(name, value, 1.0, missing, workers)]


def _bulk_targets(results: Results, workers: int) -> list[dict[str, Any]]:
    servers = (*OUR_PROTOCOLS, *PEER_NAMES)
    tried = {level for s in servers for level in levels(results, "features-256", s, workers)}
    verdicts = []
    for peer, named in PEER_NAMES.items():
        value, missing = _lowest_against(
            results, "features-256", peer, tuple(sorted(tried)), workers
        )
        name = (
            f"{ISSUE_24}, features 256 rows/call{workers_label(workers, results)}: "
            f"ours / {named} >= 1 at every level, both protocols"
        )
        verdicts.append(_verdict(name, value, 1.0, missing, workers))
    return verdicts


def issue_24_targets(results: Results) -> list[dict[str, Any]]:
    """Issue #24's targets on the peers, per worker count (set for 2 cores)."""
    verdicts: list[dict[str, Any]] = []
    for workers in worker_counts(results):
        verdicts += _one_row_targets(results, workers) + _bulk_targets(results, workers)
    return verdicts
