"""The idle-web-port benchmark's arithmetic: ratios per round, medians, its Markdown table."""

from __future__ import annotations

from typing import Any

import pytest

from bench.studies.web_idle import FIGURES, markdown, summary


def measured(round_index: int, setting: str, calls: float) -> dict[str, Any]:
    figures = dict.fromkeys(FIGURES, calls)
    return {"round": round_index, "setting": setting, "concurrency": 1, **figures}


def test_on_over_off_is_taken_per_round_then_its_median() -> None:
    cells = [
        measured(0, "off", 100.0),
        measured(0, "on, idle", 110.0),
        measured(1, "on, idle", 80.0),  # the second round runs "on" first
        measured(1, "off", 100.0),
        measured(2, "off", 50.0),
        measured(2, "on, idle", 50.0),
    ]
    [row] = summary(cells, [1])
    calls = row["calls_per_second"]
    assert row["rounds"] == 3
    assert calls["off"] == 100.0
    assert calls["on"] == 80.0
    assert calls["ratio_median"] == pytest.approx(1.0)
    assert calls["ratio_range"] == pytest.approx([0.8, 1.1])
    table = markdown(
        {
            "machine": {"cpu_count": 2, "cpu_model": "x", "load_average_at_start": [1.0]},
            "rounds": 3,
            "idle_cpu_cores": {"off": 0.001, "on, idle": 0.002},
            "summary": [row],
        }
    )
    assert "| 1 | calls_per_second | 100.00 | 80.00 | 1.000 | 0.800-1.100 |" in table
    assert "off 0.0010, on, idle 0.0020" in table
