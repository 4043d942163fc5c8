"""The perf_analyzer stopping rule on synthetic windows, and the server-figure arithmetic."""

from __future__ import annotations

import math

import pytest

from bench.scrape import Totals, server_figures
from bench.stability import WindowStats, is_stable, percentiles_ms


def windows(*pairs: tuple[float, float]) -> list[WindowStats]:
    return [WindowStats(throughput=t, p99_ms=p) for t, p in pairs]


def test_three_agreeing_windows_are_stable() -> None:
    assert is_stable(windows((1000, 10.0), (1040, 10.5), (980, 9.7)))


def test_fewer_windows_than_needed_are_not_stable() -> None:
    assert not is_stable(windows((1000, 10.0), (1000, 10.0)))


def test_throughput_drift_beyond_tolerance_is_not_stable() -> None:
    assert not is_stable(windows((800, 10.0), (1000, 10.0), (1200, 10.0)))


def test_p99_spike_is_not_stable_even_with_steady_throughput() -> None:
    assert not is_stable(windows((1000, 10.0), (1000, 10.0), (1000, 14.0)))


def test_only_the_last_windows_count() -> None:
    warm_up_then_steady = windows((200, 80.0), (1000, 10.0), (1010, 10.2), (995, 9.9))
    assert is_stable(warm_up_then_steady)
    assert not is_stable(warm_up_then_steady, count=4)


def test_tolerance_is_a_fraction_of_the_mean() -> None:
    data = windows((950, 10.0), (1000, 10.0), (1050, 10.0))
    assert is_stable(data, tolerance=0.06)
    assert not is_stable(data, tolerance=0.04)


def test_bad_rule_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="count"):
        is_stable([], count=0)


def test_percentiles_are_in_milliseconds() -> None:
    summary = percentiles_ms([0.001] * 98 + [0.1, 0.1])
    assert summary["p50_ms"] == pytest.approx(1.0)
    assert summary["p99_ms"] == pytest.approx(100.0)
    assert math.isnan(percentiles_ms([])["p99_ms"])


def test_server_figures_are_deltas_between_scrapes() -> None:
    before = Totals(rows=100, executions=10, queue_seconds=0.5, queued_requests=100)
    after = Totals(rows=900, executions=20, queue_seconds=1.3, queued_requests=900)
    figures = server_figures(before, after)
    assert figures["mean_batch_rows"] == pytest.approx(80.0)
    assert figures["mean_queue_ms"] == pytest.approx(1.0)
    assert server_figures(None, after) == {"mean_batch_rows": None, "mean_queue_ms": None}
