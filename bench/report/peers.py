"""The peers side by side (issue #24): throughput and p99 per level, and ours / peer ratios over
both of our protocols, for runs that measured Triton or MLServer (earlier runs render as before).
"""

from __future__ import annotations

from typing import Any

from bench.report.cells import Results, find, ratio, throughput_key, worker_counts, workers_of
from bench.verdicts import OUR_PROTOCOLS, PEER_NAMES

SHOWN = ("ours", "ours-v2", "echo", "torchserve", "triton", "mlserver")
NEW_PEERS = ("triton", "mlserver")
PROTOCOL_LABELS = {"ours": "ours", "ours-v2": "v2"}


def measured_peers(results: Results) -> bool:
    return any(cell["server"] in NEW_PEERS for cell in results.get("cells", []))


def _shown(cell: dict[str, Any] | None, key: str) -> str:
    if cell is None:
        return "-"
    if "failed" in cell:
        return "failed"
    text = f"{cell[key]:,.0f} ({cell['p99_ms']:,.1f})"
    return f"{text} invalid" if "invalid" in cell else text


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(results: Results, scenario: str, names: dict[str, str]) -> list[str]:
    cells = [c for c in results.get("cells", []) if c["scenario"] == scenario]
    servers = [s for s in SHOWN if any(c["server"] == s for c in cells)]
    peers = [s for s in PEER_NAMES if s in servers]
    if not cells or not peers:
        return []
    key = throughput_key(scenario)
    unit = "calls/s" if scenario == "features-1" else "rows/s"
    title = "one named row per call" if scenario == "features-1" else "256 dense rows per call"
    pairs = [(ours, peer) for peer in peers for ours in OUR_PROTOCOLS if ours in servers]
    header = [
        "workers",
        "concurrency",
        *(names[s] for s in servers),
        *(f"{PROTOCOL_LABELS[ours]} / {PEER_NAMES[peer]}" for ours, peer in pairs),
    ]
    lines = [
        f"#### {title}: {unit} (p99 ms)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---:|" * len(header),
    ]
    for workers, level in sorted({(workers_of(c), c["concurrency"]) for c in cells}):
        row = [str(workers), str(level)]
        row += [_shown(find(results, scenario, s, level, workers), key) for s in servers]
        row += [
            _ratio(ratio(results, scenario, ours, peer, level, workers)) for ours, peer in pairs
        ]
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def peers_section(results: Results, names: dict[str, str]) -> list[str]:
    """The section, or nothing when the run measured neither Triton nor MLServer."""
    if not measured_peers(results):
        return []
    counts = ", ".join(map(str, worker_counts(results)))
    lines = [
        "### The peers side by side",
        "",
        f"Every server with the same number of serving processes ({counts}: genre-serve "
        "`GENRE_WORKERS=N`, N echo processes, N TorchServe workers, N Triton model instances, "
        "N MLServer parallel workers), driven by the same client processes in the same run. "
        "The peers serve the same weights through our own runner (`bench.peers.model`) with "
        "their own dynamic batchers at 256 rows and 5 ms, over the Open Inference Protocol "
        "(TorchServe over its own gRPC API). Ratios are ours / peer over genre.v1 (`ours`) and "
        "over the Open Inference Protocol (`v2`); a cell marked invalid had a saturated client "
        "and is in no ratio or verdict.",
        "",
    ]
    for scenario in ("features-1", "features-256"):
        lines += _table(results, scenario, names)
    return lines
