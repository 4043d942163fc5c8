"""Issue #24's report: the peers side by side, invalid cells marked and judged nowhere, and the
targets on the peers with their causes, all from a run's JSON alone."""

from __future__ import annotations

from typing import Any

import pytest

from bench import report, verdicts
from bench.report import gaps

# calls/s per server at c = 1, 8, 64, 256 (2 workers each); 256-row calls in rows/s at c = 1, 8
ONE_ROW = {
    "ours": (500, 1700, 2300, 2400),
    "ours-v2": (450, 1500, 2000, 2100),
    "echo": (1400, 4400, 3000, 3200),
    "torchserve": (70, 500, 1600, 3000),
    "triton": (110, 660, 1600, 1900),
    "mlserver": (110, 420, 680, 740),
}
BULK = {"ours": (40000, 60000), "ours-v2": (39000, 58000), "triton": (30000, 61000)}
P99_AT_256 = {
    "ours": 180.0,
    "ours-v2": 250.0,
    "torchserve": 300.0,
    "triton": 230.0,
    "mlserver": 900,
}
ONE = "issue 24, features 1 row/call, 2 workers"


def cell(server: str, scenario: str, level: int, rate: float) -> dict[str, Any]:
    rows = 1 if scenario == "features-1" else 256
    p99 = P99_AT_256.get(server, 99.0) if (scenario, level) == ("features-1", 256) else 5.0
    return {
        "scenario": scenario, "server": server, "concurrency": level, "workers": 2,
        "connections": 8, "rows_per_call": rows, "calls_per_second": rate / rows,
        "rows_per_second": rate, "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": p99, "errors": {},
        "mean_batch_rows": 1.0, "mean_queue_ms": 3.0, "server_cpu_us_per_call": 400.0,
        "stable": True, "windows": [{}, {}, {}], "load_average_before": [1.0, 1.0, 1.0],
        "client_processes": 2, "client_cpu_fractions": [0.4, 0.35], "client_cpu_fraction": 0.4,
    }  # fmt: skip


def peers_record() -> dict[str, Any]:
    cells = [
        cell(server, "features-1", level, rate)
        for server, rates in ONE_ROW.items()
        for level, rate in zip((1, 8, 64, 256), rates, strict=True)
    ] + [
        cell(server, "features-256", level, rate)
        for server, rates in BULK.items()
        for level, rate in zip((1, 8), rates, strict=True)
    ]
    saturated = next(c for c in cells if (c["server"], c["concurrency"]) == ("echo", 256))
    saturated.update(client_cpu_fractions=[0.95, 0.5], client_cpu_fraction=0.95,
                     invalid="client process 1 of 2 used 95% of a core")  # fmt: skip
    results: dict[str, Any] = {
        "machine": {"cpu_count": 2, "cpu_model": "Test CPU", "python": "3.11", "torch": "2",
                    "grpcio": "1", "gpu": None, "load_average_at_start": [1.0, 1.0, 1.0]},
        "plan": {"window_s": 1.5, "warmup_s": 2.0, "client_processes": 2,
                 "servers": list(ONE_ROW), "connections_per_worker": 4},
        "cells": cells,
        "skipped": {},
    }  # fmt: skip
    results["targets"] = verdicts.targets(results)
    return results


def judged(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["target"]: v for v in results["targets"] if v["target"].startswith("issue 24")}


def test_the_peers_bar_is_judged_at_every_level_over_both_protocols() -> None:
    results = peers_record()
    targets = judged(results)
    head = f"{ONE}: "
    every = "at c=1, 8, 64 and 256, both protocols"

    mlserver = targets[f"{head}ours / MLServer >= 1 {every}"]
    torchserve = targets[f"{head}ours / TorchServe >= 1 {every}"]
    triton = targets[f"{head}ours / Triton {every} (reported)"]

    assert mlserver["met"] is True
    assert mlserver["value"] == pytest.approx(2100 / 740)  # v2 at c=256 is the closest call
    assert torchserve["met"] is False
    assert torchserve["value"] == pytest.approx(2100 / 3000)
    assert (triton["goal"], triton["met"]) == (None, None)
    assert triton["value"] == pytest.approx(2100 / 1900)
    cause = gaps.gap_cause(torchserve["target"], results)
    assert cause.startswith("furthest behind at c=256 over the Open Inference Protocol")
    assert "TorchServe 3,000 calls/s at 400 µs of server CPU per call, 1.20 of 2 cores" in cause
    assert "busy; ours 2,100 calls/s" in cause


def test_p99_is_held_against_the_best_peer_over_both_protocols() -> None:
    results = peers_record()
    p99 = judged(results)[f"{ONE}, c=256: best peer's p99 / ours, both protocols >= 1"]

    assert p99["value"] == pytest.approx(230.0 / 250.0)  # Triton's 230 ms against v2's 250 ms
    assert p99["met"] is False
    cause = gaps.gap_cause(p99["target"], results)
    assert "the best peer, Triton, answered with p99 230.0 ms" in cause
    assert "ours over v2 250.0 ms, 3.0 ms of it queued on average" in cause


def test_an_invalid_cell_is_shown_marked_and_left_out_of_every_verdict() -> None:
    results = peers_record()
    targets = judged(results)
    text = report.markdown(results)

    echo_256 = targets[f"{ONE}, c=256: ours / echo >= 0.6"]
    assert (echo_256["value"], echo_256["met"]) == (None, None)
    assert echo_256["missing"] == ["echo c=256 invalid"]
    assert f"| {ONE}, c=256: ours / echo >= 0.6 | - | not judged: echo c=256 invalid |" in text
    assert targets[f"{ONE}, c=64: ours / echo >= 0.6"]["met"] is True
    assert "3,200 (invalid)" in text  # the main table keeps the figure, marked
    assert "95/50% **invalid**" in text  # the detail row names the saturated process


def test_bulk_targets_cover_every_peer_and_say_what_was_not_run() -> None:
    targets = judged(peers_record())
    head = "issue 24, features 256 rows/call, 2 workers: ours / "
    tail = " >= 1 at every level, both protocols"

    triton = targets[f"{head}Triton{tail}"]
    assert triton["value"] == pytest.approx(58000 / 61000)
    assert triton["met"] is False
    mlserver = targets[f"{head}MLServer{tail}"]
    assert (mlserver["value"], mlserver["met"]) == (None, None)
    assert mlserver["missing"] == ["mlserver c=1 not run", "mlserver c=8 not run"]


def test_the_peers_table_puts_every_server_side_by_side_with_both_ratios() -> None:
    text = report.markdown(peers_record())

    assert "### The peers side by side" in text
    assert (
        "| workers | concurrency | genre-serve | genre-serve, Open Inference Protocol | "
        "echo ceiling | TorchServe 0.12 | Triton 2.51 | MLServer 1.7.1 | ours / TorchServe | "
        "v2 / TorchServe | ours / Triton | v2 / Triton | ours / MLServer | v2 / MLServer |"
    ) in text
    assert (
        "| 2 | 256 | 2,400 (180.0) | 2,100 (250.0) | 3,200 (99.0) invalid | 3,000 (300.0) | "
        "1,900 (230.0) | 740 (900.0) | 0.80 | 0.70 | 1.26 | 1.11 | 3.24 | 2.84 |"
    ) in text
    assert "Up to 2 closed-loop client processes per cell" in text
    assert "| reported |" in text


def test_a_run_without_triton_or_mlserver_has_no_peers_section() -> None:
    results = peers_record()
    results["cells"] = [c for c in results["cells"] if c["server"] not in ("triton", "mlserver")]

    assert "The peers side by side" not in report.markdown(results)


def test_a_saturated_stream_client_ends_the_search_and_says_so() -> None:
    results = peers_record()
    held = {"streams": 16, "windows_per_second": 16.0, "audio_seconds_per_wall_second": 16.0,
            "p50_ms": 40.0, "p99_ms": 90.0, "errors": {}, "load_average_before": [1.0, 1.0, 1.0],
            "client_cpu_fraction": 0.5}  # fmt: skip
    saturated = {**held, "streams": 64, "client_cpu_fraction": 0.95,
                 "invalid": "client process 1 of 1 used 95% of a core"}  # fmt: skip
    results["audio"] = {
        "model": "gtzan-cnn-lstm", "device": "cpu", "stand_in": False,
        "realtime": [held, saturated], "offline_windows_per_second": {"8": 380.0},
        "sustained_streams": 16,
    }  # fmt: skip
    results["targets"] = verdicts.targets(results)

    streams = next(v for v in results["targets"] if v["target"].startswith("audio: real-time"))
    assert (streams["value"], streams["met"]) == (16, True)
    assert gaps.gap_cause("audio: real-time streams", results) == (
        "the search stopped at 64 streams: client process 1 of 1 used 95% of a core"
    )
    text = report.markdown(results)
    assert "| 64 | 16.0 (invalid) |" in text
    assert "| 16 | 16.0 |" in text
