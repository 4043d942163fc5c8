"""Results -> target verdicts and the Markdown tables (``benchmarks.md``, the README headline)."""

from __future__ import annotations

import math
from typing import Any

SERVER_NAMES = {
    "ours": "genre-serve",
    "ours-no-batching": "genre-serve, batching off",
    "ours-bf16": "genre-serve, bfloat16",
    "echo": "echo ceiling",
    "torchserve": "TorchServe 0.12",
}


def _num(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def cell_line(cell: dict[str, Any]) -> str:
    head = f"{cell['scenario']} {cell['server']} c={cell['concurrency']}"
    if "failed" in cell:
        return f"{head}: FAILED {cell['failed']}"
    return (
        f"{head}: {cell['calls_per_second']:,.0f} calls/s {cell['rows_per_second']:,.0f} rows/s "
        f"p50 {cell['p50_ms']:.2f} p99 {cell['p99_ms']:.2f} ms errors {cell['errors']} "
        f"batch {_num(cell.get('mean_batch_rows'), 1)} stable {cell['stable']} "
        f"client cpu {cell['client_cpu_fraction']:.2f}"
    )


def audio_line(cell: dict[str, Any]) -> str:
    if "failed" in cell:
        return f"FAILED {cell['failed']}"
    return (
        f"{cell['windows_per_second']:,.1f} windows/s, {cell['audio_seconds_per_wall_second']:.1f}"
        f" audio s/s, p99 {_num(cell['p99_ms'], 1)} ms, "
        f"batch {_num(cell.get('mean_batch_rows'), 1)}, errors {cell['errors']}"
    )


def _lookup(
    results: dict[str, Any], scenario: str, server: str, level: int
) -> dict[str, Any] | None:
    for cell in results.get("cells", []):
        if (cell["scenario"], cell["server"], cell["concurrency"]) == (scenario, server, level):
            return None if "failed" in cell else cell
    return None


def _ratio(results: dict[str, Any], scenario: str, a: str, b: str, level: int) -> float | None:
    key = "calls_per_second" if scenario == "features-1" else "rows_per_second"
    first, second = _lookup(results, scenario, a, level), _lookup(results, scenario, b, level)
    if first is None or second is None or second[key] <= 0:
        return None
    return float(first[key] / second[key])


def audio_ratio(audio: dict[str, Any] | None) -> float | None:
    """Flat-out streaming windows/s over offline windows/s at the batch size the server ran.

    The offline rate is taken at the measured batch size nearest the server's mean batch.
    """
    fast = (audio or {}).get("fast_many")
    if not audio or not fast or "failed" in fast:
        return None
    offline = {int(k): v for k, v in audio["offline_windows_per_second"].items()}
    batch = fast.get("mean_batch_rows") or 1.0
    nearest = min(offline, key=lambda size: abs(math.log(size) - math.log(batch)))
    return float(fast["windows_per_second"] / offline[nearest])


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it was met (None: not run)."""
    verdicts: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: float) -> None:
        met = None if value is None else value >= goal
        verdicts.append({"target": name, "value": value, "goal": goal, "met": met})

    add(
        "features 1 row/call, c=64: ours / echo >= 0.85",
        _ratio(results, "features-1", "ours", "echo", 64),
        0.85,
    )
    for level in (1, 8):
        add(
            f"features 1 row/call, c={level}: ours / TorchServe >= 2",
            _ratio(results, "features-1", "ours", "torchserve", level),
            2.0,
        )
    levels = [
        c["concurrency"]
        for c in results.get("cells", [])
        if c["scenario"] == "features-1" and c["server"] == "torchserve"
    ]
    ratios = [_ratio(results, "features-1", "ours", "torchserve", level) for level in levels]
    known = [r for r in ratios if r is not None]
    add(
        "features 1 row/call: ours / TorchServe >= 1 at every level",
        min(known) if known else None,
        1.0,
    )
    for server, named in (("ours", ""), ("ours-bf16", " (opt-in bfloat16)")):
        bulk = [
            c["rows_per_second"]
            for c in results.get("cells", [])
            if c["scenario"] == "features-256" and c["server"] == server and "failed" not in c
        ]
        add(
            f"features 256 rows/call{named}: rows/s >= 100,000",
            max(bulk) if bulk else None,
            100_000,
        )
    add("audio: streaming / offline windows/s >= 0.8", audio_ratio(results.get("audio")), 0.8)
    return verdicts


# Why a target is missed on the 2-core machine (measured; see README "Benchmarks"), printed
# beside the verdict whenever it is missed.
GAP_CAUSES = {
    "echo": "one asyncio loop under one GIL: ~460-510 µs of server CPU per call from c=64 on "
    "against the echo's ~180 µs; the handler's own Python is ~130 µs of it (measured in-process), "
    "the rest the extra await, the hand-offs to the inference thread and GIL switches; closing "
    "it needs more event loops (processes), not a faster handler",
    "TorchServe >= 1": "TorchServe's Java front-end uses both cores; ours is one event loop, "
    "flat at ~2,500 calls/s from c=64 on (level with TorchServe at c=64, about half at c=256)",
    "100,000": "compute-bound on one inference thread: the 10-member ensemble takes ~4.5 ms of "
    "one core per 256 rows in float32 (~2.7 ms in bfloat16, where GELU and layout copies are a "
    "third), plus ~0.5 ms of decoding and response encoding on the loop",
    "audio": "the forward pass holds one core; the event loop and the flat-out client share the "
    "other",
}


def _cause(target: str) -> str:
    return next((cause for key, cause in GAP_CAUSES.items() if key in target), "")


def _features_tables(results: dict[str, Any], scenario: str) -> list[str]:
    cells = [c for c in results.get("cells", []) if c["scenario"] == scenario]
    if not cells:
        return []
    unit = "calls/s" if scenario == "features-1" else "rows/s"
    key = "calls_per_second" if scenario == "features-1" else "rows_per_second"
    servers = [s for s in SERVER_NAMES if any(c["server"] == s for c in cells)]
    levels = sorted({c["concurrency"] for c in cells})
    title = "one named row per call" if scenario == "features-1" else "256 dense rows per call"
    lines = [f"### ClassifyFeatures, {title} ({unit})", ""]
    header = [
        "concurrency",
        *(SERVER_NAMES[s] for s in servers),
        "ours / echo",
        "ours / TorchServe",
        "batching on / off",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for level in levels:
        row = [str(level)]
        for server in servers:
            cell = _lookup(results, scenario, server, level)
            row.append(_num(cell[key]) if cell else "-")
        for other in ("echo", "torchserve", "ours-no-batching"):
            row.append(_num(_ratio(results, scenario, "ours", other, level), 2))
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "| server | c | " + unit + " | p50 ms | p90 ms | p99 ms | errors | "
        "mean batch | mean queue ms | server CPU µs/call | stable | load before | client CPU |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|---:|",
    ]
    for cell in cells:
        if "failed" in cell:
            lines.append(
                f"| {SERVER_NAMES[cell['server']]} | {cell['concurrency']} | failed: "
                f"{cell['failed']} |||||||||"
            )
            continue
        errors = ", ".join(f"{k} {v}" for k, v in cell["errors"].items()) or "0"
        lines.append(
            f"| {SERVER_NAMES[cell['server']]} | {cell['concurrency']} | {_num(cell[key])} | "
            f"{cell['p50_ms']:.2f} | {cell['p90_ms']:.2f} | {cell['p99_ms']:.2f} | {errors} | "
            f"{_num(cell.get('mean_batch_rows'), 1)} | {_num(cell.get('mean_queue_ms'), 2)} | "
            f"{_num(cell.get('server_cpu_us_per_call'))} | "
            f"{'yes' if cell['stable'] else 'no'} ({len(cell['windows'])} windows) | "
            f"{cell['load_average_before'][0]:.2f} | {cell['client_cpu_fraction']:.0%} |"
        )
    return [*lines, ""]


def _audio_tables(audio: dict[str, Any] | None) -> list[str]:
    if not audio:
        return []
    stand_in = " (untrained stand-in of the shipped shape)" if audio["stand_in"] else ""
    offline = audio["offline_windows_per_second"]
    lines = [
        f"### ClassifyAudioStream, `{audio['model']}`{stand_in}",
        "",
        f"Offline (runner alone on {audio.get('device', 'cpu')}, no gRPC): "
        + ", ".join(f"batch {k}: {v:,.1f} windows/s" for k, v in offline.items())
        + ".",
        "",
        "| real-time streams | windows/s | p50 ms | p99 ms | audio s per wall s | "
        "mean batch | errors | load before |",
        "|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for cell in audio["realtime"]:
        if "failed" in cell:
            lines.append(f"| ? | failed: {cell['failed']} |||||||")
            continue
        lines.append(
            f"| {cell['streams']} | {cell['windows_per_second']:,.1f} | "
            f"{_num(cell['p50_ms'], 1)} | "
            f"{_num(cell['p99_ms'], 1)} | {cell['audio_seconds_per_wall_second']:.1f} | "
            f"{_num(cell.get('mean_batch_rows'), 1)} | {cell['errors'] or 0} | "
            f"{cell['load_average_before'][0]:.2f} |"
        )
    lines += [
        "",
        f"Sustained real-time streams with p99 window latency under 250 ms: "
        f"**{audio.get('sustained_streams', 0)}**.",
        "",
    ]
    for key, label in (
        ("fast_one", "One stream sent flat out"),
        ("fast_many", "Several streams sent flat out"),
    ):
        if key in audio:
            lines.append(f"- {label}: {audio_line(audio[key])}")
    ratio = audio_ratio(audio)
    lines += [
        f"- Streaming / offline windows/s at the server's mean batch size: {_num(ratio, 2)}",
        "",
    ]
    return lines


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# genre-serve benchmarks",
        "",
        f"Machine: {machine['cpu_count']} x {machine['cpu_model']}"
        + (f", {machine['gpu']}" if machine.get("gpu") else "")
        + f"; Python {machine['python']}, "
        f"torch {machine['torch']}, grpcio {machine['grpcio']}. Load average (1/5/15 min) at "
        f"start {machine['load_average_at_start']}, at end {machine.get('load_average_at_end')}; "
        f"run took {results.get('seconds', 0):.0f} s. One closed-loop client process "
        "(grpc.aio, pre-serialised requests) for every server; windows of "
        f"{results['plan']['window_s']} s after {results['plan']['warmup_s']} s warm-up until "
        "three agree within 10% (throughput and p99).",
        "",
    ]
    for scenario in ("features-1", "features-256"):
        lines += _features_tables(results, scenario)
    lines += _audio_tables(results.get("audio"))
    for name, reason in results.get("skipped", {}).items():
        lines += [f"Skipped {name}: {reason}", ""]
    lines += [
        "### Targets",
        "",
        "| target | measured | met | cause of the gap |",
        "|---|---:|---|---|",
    ]
    for verdict in results.get("targets", []):
        met = {True: "yes", False: "**no**", None: "not run"}[verdict["met"]]
        cause = _cause(verdict["target"]) if verdict["met"] is False else ""
        lines.append(f"| {verdict['target']} | {_num(verdict['value'], 2)} | {met} | {cause} |")
    return "\n".join(lines) + "\n"


def headline(results: dict[str, Any]) -> str:
    """The README's table: one-row calls per concurrency for every server, with the ratios."""
    lines = _features_tables(results, "features-1")
    table = [line for line in lines[2:] if line.startswith("|")]
    first_detail = next(i for i, line in enumerate(table) if line.startswith("| server"))
    return "\n".join(table[:first_detail]) + "\n"
