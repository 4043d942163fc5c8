"""What a run's record holds, looked up: cells by server, scenario, level and worker count.

Cells carry the number of serving processes they ran with (``workers``; runs from before there
were workers have none and ran one). A ratio only ever compares cells of the same count. A cell
that failed, or that a saturated client made invalid (``bench.windows``), is no measurement of
the server: lookups leave it out, so no verdict rests on it.
"""

from __future__ import annotations

from typing import Any

Results = dict[str, Any]


def counts(cell: dict[str, Any]) -> bool:
    """Whether a cell is a measurement of its server: neither failed nor invalid."""
    return "failed" not in cell and "invalid" not in cell


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


def find(
    results: Results, scenario: str, server: str, level: int, workers: int = 1
) -> dict[str, Any] | None:
    """The cell as recorded (failed or invalid ones too), or None when it was not run."""
    wanted = (scenario, server, level, workers)
    recorded: list[dict[str, Any]] = results.get("cells", [])
    for cell in recorded:
        if (cell["scenario"], cell["server"], cell["concurrency"], workers_of(cell)) == wanted:
            return cell
    return None


def lookup(
    results: Results, scenario: str, server: str, level: int, workers: int = 1
) -> dict[str, Any] | None:
    """The measured cell, or None when it was not run, failed or is invalid."""
    cell = find(results, scenario, server, level, workers)
    return cell if cell is not None and counts(cell) else None


def why_not_counted(cell: dict[str, Any] | None) -> str:
    """ "not run", "failed" or "invalid" for a cell ``lookup`` leaves out ("" if it counts)."""
    if cell is None:
        return "not run"
    if "failed" in cell:
        return "failed"
    return "invalid" if "invalid" in cell else ""


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


def levels(results: Results, scenario: str, server: str, workers: int) -> list[int]:
    """The concurrency levels the run tried for one server, measured or not."""
    return [
        c["concurrency"]
        for c in results.get("cells", [])
        if c["scenario"] == scenario and c["server"] == server and workers_of(c) == workers
    ]


def cells_of(results: Results, scenario: str, server: str, workers: int) -> list[dict[str, Any]]:
    """The measured (neither failed nor invalid) cells of one server with ``workers`` processes."""
    return [
        c
        for c in results.get("cells", [])
        if (c["scenario"], c["server"], workers_of(c)) == (scenario, server, workers) and counts(c)
    ]
