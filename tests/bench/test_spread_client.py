"""The load client spreads its calls over several connections and servers, as a caller of
several server processes must (the kernel balances connections, not calls)."""

from __future__ import annotations

from pathlib import Path

from bench.endpoints import CLASSIFY
from bench.load import UnarySpec, run_unary
from bench.request_bodies import write_requests
from bench.server_process import start_server_process
from tests.support.checkpoints import write_tiny_model
from tests.support.harness import sample_value, scrape


async def test_calls_reach_every_server_the_client_is_given(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    version = write_tiny_model(repository, name="tiny-mlp")
    request = write_requests(tmp_path, version, "tiny-mlp")["features-1"]
    servers = [start_server_process(repository) for _ in range(2)]
    try:
        spec = UnarySpec(
            target=servers[0].target,
            extra_targets=(servers[1].target,),
            channels=4,
            method=CLASSIFY,
            request_file=str(request),
            rows_per_call=1,
            concurrency=8,
            warmup_s=0.3,
            window_s=0.3,
            max_windows=4,
        )
        result = await run_unary(spec)
        assert result["errors_total"] == 0
        served = [
            sample_value(scrape(s.metrics_port), "genre_requests_total", {"status": "OK"})
            for s in servers
        ]
        assert all(count > 0 for count in served), served
        assert sum(served) >= result["calls_total"]
    finally:
        for server in servers:
            assert server.stop() == 0
