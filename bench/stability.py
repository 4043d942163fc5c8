"""perf_analyzer's stopping rule: measure fixed windows until the last few agree.

A window is stable with its neighbours when both its throughput and its p99 latency lie within
``tolerance`` (a fraction) of the mean of the last ``count`` windows. The reported figures are
taken over those stable windows only, so warm-up and drift never reach the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowStats:
    """One measurement window: completed calls per second and the p99 of their latencies."""

    throughput: float
    p99_ms: float


def _within(values: Sequence[float], tolerance: float) -> bool:
    mean = sum(values) / len(values)
    if mean <= 0:
        return all(value == 0 for value in values)
    return all(abs(value - mean) <= tolerance * mean for value in values)


def is_stable(windows: Sequence[WindowStats], tolerance: float = 0.1, count: int = 3) -> bool:
    """True when the last ``count`` windows agree on throughput and p99 within ``tolerance``."""
    if count <= 0 or tolerance < 0:
        raise ValueError("need count > 0 and tolerance >= 0")
    if len(windows) < count:
        return False
    last = windows[-count:]
    return _within([w.throughput for w in last], tolerance) and _within(
        [w.p99_ms for w in last], tolerance
    )


def percentiles_ms(latencies_s: Sequence[float] | np.ndarray) -> dict[str, float]:
    """p50/p90/p99 and mean of latencies given in seconds, in milliseconds (NaN when empty)."""
    values = np.asarray(latencies_s, dtype=np.float64) * 1000.0
    if values.size == 0:
        nan = float("nan")
        return {"p50_ms": nan, "p90_ms": nan, "p99_ms": nan, "mean_ms": nan}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "mean_ms": float(values.mean()),
    }
