"""Rendering bench results from their JSON alone: gap causes come from the run's own record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import report, verdicts
from bench.report import gaps

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def cell(server: str, scenario: str, level: int, rate: float, cpu_us: float) -> dict[str, Any]:
    rows = 1 if scenario == "features-1" else 256
    return {
        "scenario": scenario,
        "server": server,
        "concurrency": level,
        "rows_per_call": rows,
        "calls_per_second": rate / rows,
        "rows_per_second": rate,
        "p50_ms": 1.0,
        "p90_ms": 2.0,
        "p99_ms": 3.0,
        "errors": {},
        "mean_batch_rows": None if server in ("echo", "torchserve") else float(rows),
        "mean_queue_ms": 0.1,
        "server_cpu_us_per_call": cpu_us,
        "stable": True,
        "windows": [{}, {}, {}],
        "load_average_before": [0.5, 0.5, 0.5],
        "client_cpu_fraction": 0.3,
    }


def run_record(cpu_count: int, gpu: str | None) -> dict[str, Any]:
    """A small but complete bench.run result, on the machine described."""
    device = "cuda" if gpu else "cpu"
    fast = {"streams": 32, "windows_per_second": 300.0, "audio_seconds_per_wall_second": 450.0}
    results: dict[str, Any] = {
        "machine": {
            "cpu_count": cpu_count,
            "cpu_model": "Test CPU",
            "python": "3.11",
            "torch": "2",
            "grpcio": "1",
            "gpu": gpu,
            "load_average_at_start": [0.1, 0.1, 0.1],
            "load_average_at_end": [0.2, 0.2, 0.2],
        },
        "plan": {"window_s": 1.5, "warmup_s": 2.0},
        "seconds": 100.0,
        "device": device,
        "cells": [
            cell("ours", "features-1", 64, 2000.0, 500.0),
            cell("echo", "features-1", 64, 5000.0, 200.0),
            cell("ours", "features-1", 256, 2000.0, 480.0),
            cell("torchserve", "features-1", 256, 4000.0, 350.0),
            cell("ours", "features-256", 8, 40000.0, 7000.0),
        ],
        "audio": {
            "model": "gtzan-cnn-lstm",
            "device": device,
            "stand_in": False,
            "offline_windows_per_second": {"8": 380.0, "16": 400.0},
            "realtime": [],
            "sustained_streams": 0,
            "fast_many": {**fast, "errors": {}, "p99_ms": 9.0, "mean_batch_rows": 15.0},
        },
        "skipped": {},
    }
    results["targets"] = verdicts.targets(results)
    return results


def causes(results: dict[str, Any]) -> dict[str, str]:
    return {
        v["target"]: gaps.gap_cause(v["target"], results)
        for v in results["targets"]
        if v["met"] is False
    }


def test_a_16_core_gpu_run_is_not_explained_as_a_2_core_one() -> None:
    results = run_record(16, "NVIDIA H100 80GB HBM3")
    text = report.markdown(results)

    assert "the other core" not in text
    assert "2 cores" not in text
    explained = causes(results)
    audio = explained["audio: streaming / offline windows/s >= 0.8"]
    assert "16 cores" in audio
    assert "NVIDIA H100 80GB HBM3" in audio
    assert "75%" in audio  # 300 windows/s streaming over 400 offline at batch 16
    assert "cuda" in explained["features 256 rows/call: rows/s >= 100,000"]


def test_a_2_core_cpu_run_names_its_own_cores_and_figures() -> None:
    results = run_record(2, None)
    explained = causes(results)

    echo = explained["features 1 row/call, c=64: ours / echo >= 0.85"]
    assert "500 µs of CPU per call against the echo's 200 µs (2.5x)" in echo
    assert "1.00 of the machine's 2 cores" in echo  # 500 µs x 2,000 calls/s
    torchserve = explained["features 1 row/call: ours / TorchServe >= 1 at every level"]
    assert "at c=256 TorchServe's processes" in torchserve
    assert "1.40 of the machine's 2 cores" in torchserve
    bulk = explained["features 256 rows/call: rows/s >= 100,000"]
    assert "(27.3 µs per row)" in bulk
    assert bulk.endswith("the forward pass ran on cpu")
    audio = explained["audio: streaming / offline windows/s >= 0.8"]
    assert audio.endswith("share the machine's 2 cores")


def test_a_cause_without_the_figures_it_needs_is_left_empty() -> None:
    results = run_record(2, None)
    for entry in results["cells"]:
        entry.pop("server_cpu_us_per_call")

    assert gaps.gap_cause("features 1 row/call, c=64: ours / echo >= 0.85", results) == ""
    assert gaps.gap_cause("something else", results) == ""


def test_render_only_rewrites_the_markdown_from_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = run_record(16, "NVIDIA H100 80GB HBM3")
    source = tmp_path / "benchmarks.json"
    source.write_text(json.dumps(results))

    assert report.main([str(source)]) == 0
    assert (tmp_path / "benchmarks.md").read_text() == report.markdown(results)
    capsys.readouterr()
    assert report.main([str(source), "--headline"]) == 0
    assert capsys.readouterr().out == report.headline(results)


@pytest.mark.parametrize("run", ["benchmarks", "gpu-h100/benchmarks"])
def test_committed_markdown_is_what_its_committed_json_renders_to(run: str) -> None:
    results = json.loads((RESULTS / f"{run}.json").read_text())

    assert (RESULTS / f"{run}.md").read_text() == report.markdown(results)


def workers_record() -> dict[str, Any]:
    """A 2-core run that measured one and two serving processes; TorchServe only with one."""
    results = run_record(2, None)
    results["plan"]["connections_per_worker"] = 4
    one, two = {"workers": 1, "connections": 1}, {"workers": 2, "connections": 8}
    results["cells"] = [
        {**cell("ours", "features-1", 64, 2000.0, 500.0), **one},
        {**cell("echo", "features-1", 64, 5000.0, 200.0), **one},
        {**cell("torchserve", "features-1", 64, 6000.0, 300.0), **one},
        {**cell("ours", "features-1", 64, 3000.0, 550.0), **two, "process_cpu_shares": [0.6, 0.4]},
        {
            **cell("echo", "features-1", 64, 4000.0, 260.0),
            **two,
            "process_cpu_shares": [0.55, 0.45],
        },
    ]
    results["targets"] = verdicts.targets(results)
    return results


def test_tables_group_by_workers_and_ratios_stay_within_a_worker_count() -> None:
    results = workers_record()
    text = report.markdown(results)

    assert (
        "| workers | concurrency | genre-serve | echo ceiling | TorchServe 0.12 | ours / echo | "
        "ours / TorchServe | batching on / off |"
    ) in text
    assert "| 1 | 64 | 2,000 | 5,000 | 6,000 | 0.40 | 0.33 | - |" in text
    # two workers of ours against two echo processes; no TorchServe with two workers to compare
    assert "| 2 | 64 | 3,000 | 4,000 | - | 0.75 | - | - |" in text
    assert "| genre-serve | 2 | 8 | 64 | 3,000 | " in text
    assert "| 60/40% |" in text
    assert "4 connections per worker" in text
    assert report.headline(results).startswith("| workers | concurrency |")


def test_targets_are_judged_per_worker_count() -> None:
    results = workers_record()
    judged = {v["target"]: v for v in results["targets"]}

    one = judged["features 1 row/call, 1 worker, c=64: ours / echo >= 0.85"]
    two = judged["features 1 row/call, 2 workers, c=64: ours / echo >= 0.85"]
    assert (one["workers"], one["value"], one["met"]) == (1, 0.4, False)
    assert (two["workers"], two["value"], two["met"]) == (2, 0.75, False)
    assert judged["features 1 row/call, 2 workers, c=256: ours / echo >= 0.85"]["met"] is None
    every = "ours / TorchServe >= 1 at every level"
    assert judged[f"features 1 row/call, 1 worker: {every}"]["value"] == pytest.approx(1 / 3)
    assert judged[f"features 1 row/call, 2 workers: {every}"]["met"] is None
    cause = causes(results)["features 1 row/call, 2 workers, c=64: ours / echo >= 0.85"]
    assert "550 µs of CPU per call against the echo's 260 µs" in cause
    assert cause.endswith(
        "2 workers' asyncio event loops, whose CPU split 60/40% (the echo's 55/45%)"
    )


def test_a_one_process_run_reads_as_runs_before_workers() -> None:
    results = run_record(2, None)
    for entry in results["cells"]:
        entry.update(workers=1, connections=1)

    text = report.markdown(results)

    assert "| workers |" not in text
    assert "Serving processes" not in text
    assert "| genre-serve | 64 | 2,000 |" in text
    assert "features 1 row/call, c=64: ours / echo >= 0.85" in text
