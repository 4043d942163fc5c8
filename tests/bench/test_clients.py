"""One cell measured by several coordinated client processes against a real echo server."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import endpoints
from bench.clients import run_clients, split_spec
from bench.request_bodies import write_requests
from tests.support.checkpoints import write_tiny_model


def test_the_concurrency_and_connections_are_dealt_over_the_processes() -> None:
    spec = {"concurrency": 9, "channels": 8, "metrics_port": 1234, "kind": "unary"}

    specs = split_spec(spec, 4)

    assert [s["concurrency"] for s in specs] == [3, 2, 2, 2]
    assert [s["channels"] for s in specs] == [2, 2, 2, 2]
    assert [s["metrics_port"] for s in specs] == [1234, 0, 0, 0]  # one scrape, as one client
    assert all(s["coordinated"] for s in specs)
    assert len(split_spec({**spec, "concurrency": 1}, 4)) == 1  # never more than the calls
    assert [s["channels"] for s in split_spec({**spec, "channels": 1}, 2)] == [1, 1]


def test_two_processes_measure_one_cell_together(tmp_path: Path) -> None:
    version = write_tiny_model(tmp_path / "models", name="tiny-mlp")
    body = write_requests(tmp_path, version, "tiny-mlp")["features-1"]
    spec = {
        "kind": "unary",
        "method": endpoints.CLASSIFY,
        "request_file": str(body),
        "rows_per_call": 1,
        "concurrency": 4,
        "warmup_s": 0.3,
        "window_s": 0.3,
        "max_windows": 4,
        "channels": 2,
    }
    with endpoints.echo(version / "manifest.json", {"features-1": body}, 1) as echo:
        result = run_clients({**spec, "target": echo.target}, processes=2, limit_s=60)

    assert "failed" not in result, result
    assert result["client_processes"] == 2
    assert len(result["client_cpu_fractions"]) == 2
    assert all(0 < fraction < 1.5 for fraction in result["client_cpu_fractions"])
    assert 3 <= len(result["windows"]) <= 4
    assert result["errors"] == {}
    assert 0 < result["calls"] <= result["calls_total"]
    assert result["calls_per_second"] > 0
    assert result["p50_ms"] <= result["p99_ms"]
    assert (result["concurrency"], result["mean_batch_rows"]) == (
        4,
        None,
    )  # the echo has no /metrics


def test_a_client_that_cannot_start_fails_the_cell_with_its_reason(tmp_path: Path) -> None:
    absent = str(tmp_path / "absent.bin")
    spec = {"kind": "unary", "target": "127.0.0.1:1", "method": endpoints.CLASSIFY,
            "request_file": absent, "rows_per_call": 1, "concurrency": 2}  # fmt: skip

    result = run_clients(spec, processes=2, limit_s=30)

    assert result["failed"].startswith("client process ")
    assert "absent.bin" in result["failed"]


@pytest.mark.parametrize("processes", [1, 3])
def test_more_processes_than_calls_run_one_per_call(processes: int) -> None:
    assert len(split_spec({"concurrency": 2}, processes)) == min(processes, 2)
