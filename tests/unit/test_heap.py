"""A loaded serving process freezes what loading left and raises the collector's thresholds."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from server.pod.heap import THRESHOLDS, settle_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_collector")
def test_settling_freezes_the_survivors_and_raises_the_thresholds() -> None:
    survivor = [object() for _ in range(1000)]
    gc.unfreeze()
    settle_heap()
    assert gc.get_freeze_count() >= len(survivor)
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_threshold()[0] > 700  # Python's default, which the benchmark beat
