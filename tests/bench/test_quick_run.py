"""``python -m bench.run --quick`` against a tiny model on loopback: valid JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report
from bench.run import main
from tests.support.checkpoints import write_tiny_model


def test_quick_run_writes_results(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, name="tiny-mlp")
    out = tmp_path / "results"

    assert main(["--quick", "--repository", str(repository), "--model", "tiny-mlp",
                 "--out", str(out)]) == 0  # fmt: skip

    results = json.loads((out / "benchmarks.json").read_text())
    cells = {(c["server"], c["scenario"], c["concurrency"]): c for c in results["cells"]}
    assert set(cells) == {("ours", "features-1", 1), ("echo", "features-1", 1)}
    for cell in cells.values():
        assert "failed" not in cell, cell
        assert cell["calls"] > 0
        assert cell["errors"] == {}
        assert len(cell["windows"]) >= 3
        assert cell["p50_ms"] <= cell["p90_ms"] <= cell["p99_ms"]
    assert cells[("ours", "features-1", 1)]["mean_batch_rows"] == 1.0
    assert {(c["workers"], c["connections"]) for c in cells.values()} == {(1, 1)}
    assert results["plan"]["workers"] == [1]
    assert results["machine"]["cpu_count"] >= 1
    assert {t["target"]: t["met"] for t in results["targets"]}  # every verdict is present
    markdown = (out / "benchmarks.md").read_text()
    assert "| 1 |" in markdown
    assert "echo ceiling" in markdown
    assert markdown == report.markdown(results)


def test_quick_run_measures_the_echo_once_per_worker_count(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, name="tiny-mlp")
    out = tmp_path / "results"

    assert main(["--quick", "--servers", "echo", "--workers", "1,2", "--repository",
                 str(repository), "--model", "tiny-mlp", "--out", str(out)]) == 0  # fmt: skip

    results = json.loads((out / "benchmarks.json").read_text())
    cells = {c["workers"]: c for c in results["cells"]}
    assert results["plan"]["workers"] == [1, 2]
    assert sorted(cells) == [1, 2]
    assert all("failed" not in cell and cell["calls"] > 0 for cell in cells.values())
    assert cells[2]["connections"] == 8
    assert "process_cpu_shares" not in cells[1]
    assert len(cells[2]["process_cpu_shares"]) == 2
    assert sum(cells[2]["process_cpu_shares"]) == pytest.approx(1.0)
    markdown = (out / "benchmarks.md").read_text()
    assert "| workers | concurrency | echo ceiling |" in markdown
    assert "| echo ceiling | 2 | 8 | 1 |" in markdown


def test_quick_run_measures_the_open_inference_protocol_beside_genre_v1(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, name="tiny-mlp")
    out = tmp_path / "results"

    assert main(["--quick", "--servers", "ours,ours-v2", "--repository", str(repository),
                 "--model", "tiny-mlp", "--out", str(out)]) == 0  # fmt: skip

    results = json.loads((out / "benchmarks.json").read_text())
    cells = {c["server"]: c for c in results["cells"]}
    assert set(cells) == {"ours", "ours-v2"}
    assert all("failed" not in c and c["calls"] > 0 and c["errors"] == {} for c in cells.values())
    assert cells["ours-v2"]["mean_batch_rows"] == 1.0  # the rows went through our batcher
    verdicts = {t["target"]: t for t in results["targets"]}
    share = verdicts["features-1: Open Inference Protocol / genre.v1 calls/s >= 0.9 at every level"]
    assert share["value"] == pytest.approx(
        cells["ours-v2"]["calls_per_second"] / cells["ours"]["calls_per_second"]
    )
    assert "genre-serve, Open Inference Protocol" in (out / "benchmarks.md").read_text()
