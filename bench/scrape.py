"""The server's own figures from ``/metrics``: batch sizes and queue time between two scrapes."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

_TOTALS = {
    "genre_inferred_rows_total": "rows",
    "genre_batch_executions_total": "executions",
    "genre_queue_duration_seconds_sum": "queue_seconds",
    "genre_queue_duration_seconds_count": "queued_requests",
}


@dataclass(frozen=True)
class Totals:
    rows: float = 0.0
    executions: float = 0.0
    queue_seconds: float = 0.0
    queued_requests: float = 0.0


def scrape(metrics_port: int, timeout: float = 5.0) -> Totals | None:
    """Sums the batcher counters over every model; None when the server has no /metrics."""
    if metrics_port <= 0:
        return None
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        text = reply.read().decode()
    sums = dict.fromkeys(_TOTALS.values(), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = _TOTALS.get(sample.name)
            if key is not None:
                sums[key] += sample.value
    return Totals(**sums)


def server_figures(before: Totals | None, after: Totals | None) -> dict[str, float | None]:
    """Mean rows per forward pass and mean queue wait (ms) between two scrapes."""
    if before is None or after is None:
        return {"mean_batch_rows": None, "mean_queue_ms": None}
    executions = after.executions - before.executions
    queued = after.queued_requests - before.queued_requests
    return {
        "mean_batch_rows": (after.rows - before.rows) / executions if executions > 0 else None,
        "mean_queue_ms": 1000 * (after.queue_seconds - before.queue_seconds) / queued
        if queued > 0
        else None,
    }
