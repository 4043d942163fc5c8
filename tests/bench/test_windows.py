"""Merging what several client processes of one cell measured, and marking a saturated cell."""

from __future__ import annotations

import numpy as np
import pytest

from bench.windows import ClientWindow, judged, merged_stats, saturated, summarize


def window(
    start: float, calls: int, latency_s: float, cpu: float, span: float = 1.0
) -> ClientWindow:
    """``calls`` completed in ``[start, start + span)``, each taking ``latency_s``."""
    return ClientWindow(start, start + span, (latency_s,) * calls, {}, cpu)


def steady(calls: int, latency_s: float, cpu: float, count: int = 3) -> list[ClientWindow]:
    return [window(float(k), calls, latency_s, cpu) for k in range(count)]


def test_throughput_is_summed_and_percentiles_pool_every_call() -> None:
    fast = steady(900, 0.001, 0.4)  # 900 calls/s at 1 ms
    slow = steady(100, 0.050, 0.3)  # 100 calls/s at 50 ms

    result = summarize([fast, slow], rows_per_call=1)

    assert result["calls_per_second"] == pytest.approx(1000.0)
    assert result["calls"] == 3000
    # pooled: 10% of the calls took 50 ms, so p99 is 50 ms and p50 1 ms; neither process's own
    assert result["p99_ms"] == pytest.approx(50.0)
    assert result["p50_ms"] == pytest.approx(1.0)
    assert result["mean_ms"] == pytest.approx(0.9 * 1.0 + 0.1 * 50.0)
    assert result["client_cpu_fractions"] == pytest.approx([0.4, 0.3])
    assert result["client_cpu_fraction"] == pytest.approx(0.4)
    assert result["client_processes"] == 2
    assert result["stable"] is True
    assert "invalid" not in result


def test_errors_of_every_process_in_the_kept_windows_are_summed() -> None:
    first = [
        ClientWindow(float(k), k + 1.0, (0.001,) * 10, {"UNAVAILABLE": 1}, 0.1) for k in range(3)
    ]
    second = [
        ClientWindow(float(k), k + 1.0, (0.001,) * 10, {"UNAVAILABLE": 2, "INTERNAL": 1}, 0.1)
        for k in range(3)
    ]

    result = summarize([first, second], rows_per_call=256)

    assert result["errors"] == {"UNAVAILABLE": 9, "INTERNAL": 3}
    assert result["rows_per_second"] == pytest.approx(20 * 256)


def test_stability_is_judged_on_the_merged_windows() -> None:
    # Alone, each process's windows swing by half; merged, the sum is steady.
    rising = [window(float(k), calls, 0.001, 0.1) for k, calls in enumerate((200, 400, 600, 800))]
    falling = [window(float(k), calls, 0.001, 0.1) for k, calls in enumerate((800, 600, 400, 200))]

    stats, stable = judged([rising, falling])

    assert not judged([rising])[1]
    assert stable
    assert len(stats) == 3  # the first three merged windows already agree
    assert [s.throughput for s in stats] == pytest.approx([1000.0] * 3)
    result = summarize([rising, falling], rows_per_call=1)
    assert result["calls"] == 200 + 400 + 600 + 800 + 600 + 400  # the kept three windows


def test_unstable_windows_keep_the_last_three() -> None:
    growing = [window(float(k), 100 * 2**k, 0.001, 0.1) for k in range(5)]

    result = summarize([growing], rows_per_call=1)

    assert result["stable"] is False
    assert len(result["windows"]) == 5
    assert result["calls"] == 400 + 800 + 1600


def test_windows_only_some_processes_measured_are_left_out() -> None:
    longer = steady(100, 0.001, 0.1, count=4)
    shorter = steady(100, 0.001, 0.1, count=3)

    assert len(judged([longer, shorter])[0]) == 3


def test_a_process_at_90_percent_of_a_core_makes_the_cell_invalid() -> None:
    busy = steady(5000, 0.002, 0.93)
    idle = steady(1000, 0.002, 0.2)

    result = summarize([idle, busy], rows_per_call=1)

    assert result["invalid"].startswith("client process 2 of 2 used 93% of a core")
    assert saturated([0.89, 0.5]) is None
    assert saturated([0.9]) is not None


def test_a_window_roundtrips_through_json() -> None:
    original = ClientWindow(1.5, 2.75, (0.001, 0.002), {"UNAVAILABLE": 3}, 0.4)

    assert ClientWindow.from_json(original.to_json()) == original
    assert merged_stats([original]).throughput == pytest.approx(2 / 1.25)
    assert merged_stats([original]).p99_ms == pytest.approx(np.percentile([1.0, 2.0], 99))


def test_summarize_needs_a_window_from_every_process() -> None:
    with pytest.raises(ValueError, match="no window"):
        summarize([steady(10, 0.001, 0.1), []], rows_per_call=1)
