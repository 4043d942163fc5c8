"""Reading a server's ``/metrics`` over HTTP, as Prometheus does: raw text, one sample's value,
and the batcher's totals (batch sizes and queue time between two scrapes)."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
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


def metrics_text(metrics_port: int, timeout: float = 5.0) -> str:
    """A real HTTP GET of ``/metrics`` on loopback."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return str(reply.read().decode("utf-8"))


def sample_value(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0 when absent)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != name:
                continue
            if labels and any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            total += sample.value
    return total


def scrape(metrics_port: int, timeout: float = 5.0) -> Totals | None:
    """Sums the batcher counters over every model; None when the server has no /metrics."""
    if metrics_port <= 0:
        return None
    text = metrics_text(metrics_port, timeout)
    return Totals(**{key: sample_value(text, name) for name, key in _TOTALS.items()})


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
