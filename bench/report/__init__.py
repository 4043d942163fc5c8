"""Results -> the Markdown tables (``benchmarks.md``, the README headline), from the JSON alone.

Everything is rendered from a run's ``benchmarks.json``, so a report can be written again after
the rendering changes without measuring anything again:

    .venv/bin/python -m bench.report bench/results/benchmarks.json            # rewrites the .md
    .venv/bin/python -m bench.report bench/results/benchmarks.json --headline # the README table
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from bench.report.cells import find, ratio, throughput_key, worker_counts, workers_of
from bench.report.gaps import cpu_split, gap_cause
from bench.report.peers import peers_section
from bench.verdicts import audio_ratio

SERVER_NAMES = {
    "ours": "genre-serve",
    "ours-no-batching": "genre-serve, batching off",
    "ours-bf16": "genre-serve, bfloat16",
    "ours-v2": "genre-serve, Open Inference Protocol",
    "ours-complete": "genre-serve, complete workers",
    "ours-inference": "genre-serve, one inference process",
    "echo": "echo ceiling",
    "torchserve": "TorchServe 0.12",
    "triton": "Triton 2.51",
    "mlserver": "MLServer 1.7.1",
}


def _num(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def cell_line(cell: dict[str, Any]) -> str:
    head = f"{cell['scenario']} {cell['server']} workers={workers_of(cell)} c={cell['concurrency']}"
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
        + (
            f", client CPU {cell['client_cpu_fraction']:.0%}"
            if "client_cpu_fraction" in cell
            else ""
        )
        + (f" (**invalid**: {cell['invalid']})" if "invalid" in cell else "")
    )


def skipped_name(server: str, workers: int) -> str:
    """The key a skipped server is recorded under: its name, and its worker count past one."""
    return server if workers == 1 else f"{server} with {workers} workers"


def _features_tables(results: dict[str, Any], scenario: str) -> list[str]:
    cells = [c for c in results.get("cells", []) if c["scenario"] == scenario]
    if not cells:
        return []
    unit = "calls/s" if scenario == "features-1" else "rows/s"
    key = throughput_key(scenario)
    servers = [s for s in SERVER_NAMES if any(c["server"] == s for c in cells)]
    # A run of one process reads as runs did before workers existed; otherwise every row and
    # every cell names its worker count, and each ratio compares servers of the same count.
    counted = worker_counts(results) != [1]
    rows = sorted({(workers_of(c), c["concurrency"]) for c in cells})
    title = "one named row per call" if scenario == "features-1" else "256 dense rows per call"
    lines = [f"### ClassifyFeatures, {title} ({unit})", ""]
    header = [
        *(["workers"] if counted else []),
        "concurrency",
        *(SERVER_NAMES[s] for s in servers),
        "ours / echo",
        "ours / TorchServe",
        "batching on / off",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for workers, level in rows:
        row = [*([str(workers)] if counted else []), str(level)]
        for server in servers:
            row.append(_value(find(results, scenario, server, level, workers), key))
        for other in ("echo", "torchserve", "ours-no-batching"):
            row.append(_num(ratio(results, scenario, "ours", other, level, workers), 2))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", *_detail_header(unit, counted)]
    for cell in sorted(cells, key=workers_of):  # stable: each count's cells in measured order
        lines.append(_detail_row(cell, key, counted))
    return [*lines, ""]


def _value(cell: dict[str, Any] | None, key: str) -> str:
    """A cell's throughput for the tables: "-" when not run or failed, marked when invalid."""
    if cell is None or "failed" in cell:
        return "-"
    return _num(cell[key]) + (" (invalid)" if "invalid" in cell else "")


def _client_cpu(cell: dict[str, Any]) -> str:
    """The client's CPU: each process's share of a core, and whether the cell is invalid."""
    fractions = cell.get("client_cpu_fractions") or [cell["client_cpu_fraction"]]
    text = "/".join(f"{100 * fraction:.0f}" for fraction in fractions) + "%"
    return text + (" **invalid**" if "invalid" in cell else "")


def _detail_header(unit: str, counted: bool) -> list[str]:
    first = "| server | workers | connections | c | " if counted else "| server | c | "
    last = " | CPU per process |" if counted else " |"
    return [
        first + unit + " | p50 ms | p90 ms | p99 ms | errors | mean batch | mean queue ms | "
        "server CPU µs/call | stable | load before | client CPU" + last,
        ("|---|---:|---:|---:|" if counted else "|---|---:|")
        + "---:|---:|---:|---:|---|---:|---:|---:|---|---|---:|"
        + ("---|" if counted else ""),
    ]


def _detail_row(cell: dict[str, Any], key: str, counted: bool) -> str:
    name = SERVER_NAMES[cell["server"]]
    head = (
        f"| {name} | {workers_of(cell)} | {cell.get('connections', '-')} | {cell['concurrency']} |"
        if counted
        else f"| {name} | {cell['concurrency']} |"
    )
    if "failed" in cell:
        return f"{head} failed: {cell['failed']} |||||||||" + ("|" if counted else "")
    errors = ", ".join(f"{k} {v}" for k, v in cell["errors"].items()) or "0"
    return (
        f"{head} {_num(cell[key])} | "
        f"{cell['p50_ms']:.2f} | {cell['p90_ms']:.2f} | {cell['p99_ms']:.2f} | {errors} | "
        f"{_num(cell.get('mean_batch_rows'), 1)} | {_num(cell.get('mean_queue_ms'), 2)} | "
        f"{_num(cell.get('server_cpu_us_per_call'))} | "
        f"{'yes' if cell['stable'] else 'no'} ({len(cell['windows'])} windows) | "
        f"{cell['load_average_before'][0]:.2f} | {_client_cpu(cell)} |"
        + (f" {cpu_split(cell) or '-'} |" if counted else "")
    )


def _audio_cells(audio: dict[str, Any]) -> list[dict[str, Any]]:
    cells = [audio.get("fast_one"), *audio.get("realtime", []), audio.get("fast_many")]
    return [cell for cell in cells if cell and "failed" not in cell]


def _audio_tables(audio: dict[str, Any] | None) -> list[str]:
    if not audio:
        return []
    # What the model was comes from the run's record (``bench.audio_model.describe``); runs
    # recorded before it named the model by name alone.
    version = f" version {audio['version']}" if audio.get("version") is not None else ""
    stand_in = " (untrained stand-in)" if audio["stand_in"] else ""
    offline = audio["offline_windows_per_second"]
    lines = [f"### ClassifyAudioStream, `{audio['model']}`{version}{stand_in}", ""]
    if audio.get("description"):
        lines += [f"Model: {audio['description']}.", ""]
    if "torch_threads" in audio:
        lines += [
            f"Server settings: audio batches of at most {audio['max_batch_size']} windows, "
            f"queue delay {_num(audio['max_queue_delay_ms'], 1)} ms, "
            f"{audio['torch_threads']} torch intra-op thread(s).",
            "",
        ]
    served = sorted(
        {v for cell in _audio_cells(audio) for v in cell.get("served_versions", [])}, key=str
    )
    if served:
        lines += [f"Versions that answered the streams: {', '.join(served)}.", ""]
    if "stream_phases" in audio:
        spread = _num(audio["stream_spread_seconds"], 2)
        starts = (
            f"at seeded random offsets within {spread} s (one hop)"
            if audio["stream_phases"] == "random"
            else f"evenly over {spread} s"
        )
        lines += [
            f"Real-time streams: {_num(audio['stream_audio_seconds'], 1)} s of audio each, sent "
            f"in {_num(audio['stream_chunk_seconds'], 2)} s chunks at the pace of a live source,"
            f" their starts spread {starts}.",
            "",
        ]
    lines += [
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
            f"| {cell['streams']} | {cell['windows_per_second']:,.1f}"
            f"{' (invalid)' if 'invalid' in cell else ''} | "
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
    lines += [
        "- Streaming / offline windows/s at the server's mean batch size: "
        f"{_num(audio_ratio(audio), 2)}",
        "",
    ]
    return lines


def _workers_paragraph(results: dict[str, Any]) -> list[str]:
    """What a worker count meant for each server, for runs that measured more than one process."""
    counts = worker_counts(results)
    if counts == [1]:
        return []
    per_worker = results["plan"].get("connections_per_worker", 4)
    return [
        f"Serving processes (workers): {', '.join(map(str, counts))}. With N workers, genre-serve"
        " ran `GENRE_WORKERS=N` (a supervisor and N processes sharing one port), the echo "
        "ceiling N echo processes sharing one port (SO_REUSEPORT) and TorchServe N workers per "
        "model. The kernel hands each new connection to one process, so the client opened "
        f"{per_worker} connections per worker (one for a single process); CPU per process is "
        "each serving process's share of the server's CPU in that cell, which shows how evenly "
        "the connections landed. Ratios compare servers with the same number of workers.",
        "",
    ]


def _clients(plan: dict[str, Any]) -> str:
    """How the load was generated: one client process, or (issue #24) several per cell."""
    processes = plan.get("client_processes")
    if processes is None:  # runs before issue #24
        return "One closed-loop client process (grpc.aio, pre-serialised requests)"
    return (
        f"Up to {processes} closed-loop client process{'es' if processes > 1 else ''} per cell "
        "(grpc.aio, pre-serialised requests; the concurrency split between them, their windows "
        "merged; a cell where one used >= 90% of a core is marked invalid and judged nowhere)"
    )


def _met(verdict: dict[str, Any]) -> str:
    if "goal" in verdict and verdict["goal"] is None:
        return "reported"
    if verdict["met"] is None and verdict.get("missing"):
        return "not judged: " + ", ".join(verdict["missing"])
    return {True: "yes", False: "**no**", None: "not run"}[verdict["met"]]


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
        f"run took {results.get('seconds', 0):.0f} s. {_clients(results['plan'])} for every "
        f"server; windows of {results['plan']['window_s']} s after "
        f"{results['plan']['warmup_s']} s warm-up until three agree within 10% (throughput and "
        "p99).",
        "",
        *_workers_paragraph(results),
    ]
    for scenario in ("features-1", "features-256"):
        lines += _features_tables(results, scenario)
    lines += peers_section(results, SERVER_NAMES)
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
        met = _met(verdict)
        cause = gap_cause(verdict["target"], results) if verdict["met"] is False else ""
        lines.append(f"| {verdict['target']} | {_num(verdict['value'], 2)} | {met} | {cause} |")
    return "\n".join(lines) + "\n"


def headline(results: dict[str, Any]) -> str:
    """The README's table: one-row calls per concurrency for every server, with the ratios."""
    lines = _features_tables(results, "features-1")
    table = [line for line in lines[2:] if line.startswith("|")]
    first_detail = next(i for i, line in enumerate(table) if line.startswith("| server"))
    return "\n".join(table[:first_detail]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render a bench.run result without re-running it.")
    parser.add_argument("results", type=Path, help="a benchmarks.json written by bench.run")
    parser.add_argument("--out", type=Path, help="Markdown file (default: beside the JSON)")
    parser.add_argument("--headline", action="store_true", help="print the README table only")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    if args.headline:
        print(headline(results), end="")
        return 0
    out = args.out or args.results.with_suffix(".md")
    out.write_text(markdown(results))
    print(out)
    return 0
