"""The batching-knobs table is headed by the machine its run recorded, not the one rendering it."""

from __future__ import annotations

from bench.studies.batching_knobs import Cell, markdown


def test_header_names_the_recorded_machine() -> None:
    facts = {"cpu_count": 16, "cpu_model": "Recorded CPU", "load_average_at_start": [0.5, 0.4, 0.3]}
    cells = [Cell(256, 5.0, 8, 2736.4, 2.89, 3.8, 8.0, 0)]

    text = markdown(cells, facts)

    assert text.startswith("Measured on 16 x Recorded CPU (load average at start [0.5, 0.4, 0.3])")
    assert "| 256 | 5 | 8 | 2,736 | 2.89 | 3.80 | 8.0 | 0 |" in text
