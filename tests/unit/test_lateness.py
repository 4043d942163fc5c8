"""Lateness: the recent window-latency p99 and the median loop lag, and nothing older."""

from __future__ import annotations

import pytest

from server.streaming.lateness import Lateness


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nothing_observed_is_not_late() -> None:
    assert Lateness(clock=Clock()).late_by() == (0.0, 0.0)


def test_the_p99_of_recent_windows_and_the_median_lag() -> None:
    clock = Clock()
    lateness = Lateness(horizon_seconds=2.0, clock=clock)
    for index in range(100):
        lateness.observe_window(0.3 if index == 99 else 0.01)
    for lag in (0.0, 0.001, 0.5):  # one pause: the median ignores it
        lateness.observe_lag(lag)
    p99, lag = lateness.late_by()
    assert p99 == pytest.approx(0.3)
    assert lag == pytest.approx(0.001)


def test_samples_older_than_the_horizon_are_forgotten() -> None:
    clock = Clock()
    lateness = Lateness(horizon_seconds=2.0, clock=clock)
    lateness.observe_window(1.0)
    lateness.observe_lag(1.0)
    clock.now += 1.5
    assert lateness.late_by() == (1.0, 1.0)
    clock.now += 1.0
    lateness.observe_window(0.02)
    assert lateness.late_by() == (0.02, 0.0)
