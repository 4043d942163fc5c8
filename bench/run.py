"""The benchmark harness: ours, ours without batching, the echo ceiling and the peers, one run.

    .venv/bin/python -m bench.run            # everything (the committed run took 360 s on 2 cores)
    .venv/bin/python -m bench.run --quick    # one tiny cell per server, seconds
    .venv/bin/python -m bench.run --servers ours --scenarios audio --stream-counts 1,8,16,24 \
        --out bench/results/ensemble-cpu     # the audio model's streams alone
    .venv/bin/python -m bench.run --workers 1,2 --servers ours,echo,torchserve \
        --scenarios features-1,features-256  # every server with 1, then 2 serving processes
    .venv/bin/python -m bench.run --workers 2 --scenarios features-1,features-256 \
        --servers ours,ours-v2,echo,torchserve,triton,mlserver  # issue #24's peers, side by side

Every server is a subprocess on loopback, started here and stopped by its PID (a peer: its
process group). Every unary load cell runs ``--client-processes`` client processes
(``bench.load``; default 2, the concurrency split between them, ``bench.clients``) with a time
limit; a cell where one of them used >= 90% of a core is marked invalid and left out of the
verdicts. With ``--workers`` every features server runs once per worker count
(``bench.endpoints`` and ``bench.peers.base`` say what N processes means for each), all servers
of one count before the next, so the cells a ratio compares are measured close together; the
client opens several connections per worker, since the kernel balances connections, not calls.
The audio streams run one process and send 100 ms chunks (``--chunk-seconds``; runs before
issue #24 sent 0.25 s). Results go to ``bench/results/benchmarks.json`` and ``benchmarks.md``
(``--out``). A peer (TorchServe, Triton, MLServer: ``bench.peers``) that cannot be set up or
started within its budget is recorded as skipped, with why.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from bench import endpoints, machine, report, verdicts
from bench.audio_load import AudioSpec
from bench.audio_model import (
    describe,
    find_audio_model,
    offline_windows_per_second,
    write_stand_in,
)
from bench.clients import run_client, run_clients
from bench.cpu import process_shares, server_cpu
from bench.endpoints import Endpoint
from bench.peers.base import Peer, PeerSettings
from bench.plan import DESIGNS, PEERS, Plan, parse_arguments
from bench.request_bodies import BULK_ROWS, write_requests
from bench.server_process import start_server_process
from bench.windows import saturated
from server.config import ServerConfig
from server.runner import select_device


class Harness:
    def __init__(self, plan: Plan, repository: Path, model: str, workdir: Path) -> None:
        self.plan = plan
        self.repository = repository
        self.model = model
        self.workdir = workdir
        self.version = max(
            (p for p in (repository / model).iterdir() if p.name.isdigit()),
            key=lambda p: int(p.name),
        )
        self.bodies = write_requests(workdir, self.version, model)
        # The settings the server subprocesses will read (they inherit this environment), so the
        # results record what was served, e.g. GENRE_AUDIO_MAX_BATCH_SIZE set for a GPU run.
        self.config = ServerConfig.from_sources(environ=os.environ)
        self.cells: list[dict[str, Any]] = []
        self.skipped: dict[str, str] = {}
        self.hop_seconds = 1.0  # the audio model's default hop, once ``audio`` has read it
        self.torchserve: endpoints.TorchServe | None = None  # set up on first use, then kept
        self.peers: dict[str, Peer] = {}

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def serving(self, server: str, workers: int) -> Iterator[Endpoint]:
        genre = {
            "features-1": self.bodies["features-1"],
            "features-256": self.bodies["features-256"],
        }
        if server == "torchserve":
            if self.torchserve is None:
                self.torchserve = endpoints.TorchServe(
                    self.workdir,
                    self.version,
                    self.model,
                    self.bodies,
                    batch_size=self.config.max_batch_size,
                    max_batch_delay_ms=self.config.max_queue_delay_ms,
                    setup_s=self.plan.torchserve_setup_s,
                )
            with self.torchserve.serving(workers) as endpoint:
                yield endpoint
        elif server in ("triton", "mlserver"):
            with self._peer(server).serving(workers) as endpoint:
                yield endpoint
        elif server == "echo":
            with endpoints.echo(self.version / "manifest.json", genre, workers) as endpoint:
                yield endpoint
        else:
            env = {"GENRE_MODELS": self.model}
            if server == "ours-no-batching":
                env["GENRE_MAX_BATCH_SIZE"] = "1"
            if server == "ours-bf16":
                env["GENRE_FEATURES_PRECISION"] = "bfloat16"
            if server in DESIGNS:
                env["GENRE_INFERENCE_PROCESS"] = "off" if server == "ours-complete" else "on"
            bodies, method = genre, endpoints.CLASSIFY
            if server == "ours-v2":
                bodies = {"features-1": self.bodies["v2-1"], "features-256": self.bodies["v2-256"]}
                method = endpoints.MODEL_INFER
            with endpoints.ours(self.repository, env, bodies, workers, method) as endpoint:
                yield endpoint

    def _peer(self, server: str) -> Peer:
        """Triton's or MLServer's setup, made on first use and kept for every worker count."""
        if server not in self.peers:
            from bench.peers.mlserver import MLServer
            from bench.peers.triton import Triton

            settings = PeerSettings(
                workdir=self.workdir,
                version=self.version,
                model=self.model,
                bodies={"features-1": self.bodies["v2-1"], "features-256": self.bodies["v2-256"]},
                max_batch_size=self.config.max_batch_size,
                max_queue_delay_ms=self.config.max_queue_delay_ms,
                setup_s=self.plan.peer_setup_s,
            )
            self.peers[server] = {"triton": Triton, "mlserver": MLServer}[server](settings)
        return self.peers[server]

    def features(self) -> None:
        wanted = [s for s in ("features-1", "features-256") if s in self.plan.scenarios]
        if not wanted:
            return
        self._warm_machine()
        for workers in self.plan.workers:
            for server in self.plan.servers:
                self._features_server(server, workers, wanted)

    def _warm_machine(self) -> None:
        """A throwaway load against the echo before anything is measured.

        Whatever server a run measured first came out slower than when measured later in the
        same run, on the same machine: ours gave 1,474 calls/s at c=64 when first and 3,882
        when after the echo; ours over v2, 2,817 when first and 3,790 when second. The server
        was not the cause, the order was (a machine that has just started a run's processes is
        not yet the machine the rest of the run measures), so every run starts warm."""
        if self.plan.warm_machine_s <= 0:
            return
        self.log(f"warming the machine for {self.plan.warm_machine_s:g} s (not measured)")
        genre = {"features-1": self.bodies["features-1"]}
        with endpoints.echo(self.version / "manifest.json", genre, self.plan.workers[0]) as echo:
            spec = {
                "kind": "unary",
                "target": echo.target,
                "method": echo.method,
                "request_file": str(self.bodies["features-1"]),
                "rows_per_call": 1,
                "concurrency": 8,
                "warmup_s": self.plan.warm_machine_s,
                "window_s": 0.5,
                "max_windows": 1,
                "metrics_port": 0,
                "channels": self.plan.connections(echo.workers),
            }
            run_clients(spec, self.plan.client_processes, self.plan.cell_limit_s)

    def _features_server(self, server: str, workers: int, wanted: Sequence[str]) -> None:
        self.log(f"starting {server} with {workers} worker(s)")
        try:
            with self.serving(server, workers) as endpoint:
                for scenario in wanted:
                    if scenario == "features-256" and server == "ours-no-batching":
                        continue  # one call is one batch either way
                    if scenario == "features-1" and server == "ours-bf16":
                        continue  # precision shows in compute-bound calls only
                    levels = self.plan.levels if scenario == "features-1" else self.plan.bulk_levels
                    for concurrency in levels:
                        self._cell(server, scenario, concurrency, endpoint)
        except Exception as error:  # a peer that fails to start is a skipped comparison
            if server not in PEERS:
                raise
            name = report.skipped_name(server, workers)
            self.skipped[name] = f"{type(error).__name__}: {error}"
            self.log(f"{name} skipped: {self.skipped[name]}")

    def _cell(self, server: str, scenario: str, concurrency: int, endpoint: Endpoint) -> None:
        load_before = machine.load_average()
        spec = {
            "kind": "unary",
            "target": endpoint.target,
            "method": endpoint.method,
            "request_file": str(endpoint.bodies[scenario]),
            "rows_per_call": 1 if scenario == "features-1" else BULK_ROWS,
            "concurrency": concurrency,
            "warmup_s": self.plan.warmup_s,
            "window_s": self.plan.window_s,
            "max_windows": self.plan.max_windows,
            "metrics_port": endpoint.metrics_port,
            "channels": self.plan.connections(endpoint.workers),
        }
        cpu_before = server_cpu(endpoint.pids, endpoint.workers)
        result = run_clients(spec, self.plan.client_processes, self.plan.cell_limit_s)
        if result.get("calls_total"):
            cpu_after = server_cpu(endpoint.pids, endpoint.workers)
            server_seconds = cpu_after.total - cpu_before.total
            result["server_cpu_us_per_call"] = 1e6 * server_seconds / result["calls_total"]
            if endpoint.split and endpoint.workers > 1:
                shares = process_shares(cpu_before, cpu_after, endpoint.workers)
                result["process_cpu_shares"] = shares
        cell = {
            "scenario": scenario,
            "server": server,
            "concurrency": concurrency,
            "workers": endpoint.workers,
            "connections": spec["channels"],
            "load_average_before": load_before,
            **result,
        }
        self.cells.append(cell)
        self.log(report.cell_line(cell))

    def _audio_cell(self, base: dict[str, Any], streams: int, realtime: bool) -> dict[str, Any]:
        load_before = machine.load_average()
        extra: dict[str, Any]
        if realtime:
            extra = {
                "audio_seconds": self.plan.stream_audio_seconds,
                "realtime": True,
                "chunk_seconds": self.plan.stream_chunk_seconds,
            }
            if self.plan.stream_phases == "random":
                extra |= {"phases": "random", "spread_seconds": self.hop_seconds}
        else:
            extra = {
                "audio_seconds": self.plan.fast_audio_seconds,
                "realtime": False,
                "spread_seconds": 0.0,
                "chunk_seconds": 1.0,
            }
        limit = extra["audio_seconds"] * (1.5 if realtime else 1.0) + 90
        cell = run_client({**base, "streams": streams, **extra}, limit)
        cell["load_average_before"] = load_before
        reason = saturated([cell["client_cpu_fraction"]]) if "failed" not in cell else None
        if reason is not None:
            cell["invalid"] = reason  # the client set the pace: no measurement of the server
        kind = "real-time" if realtime else "flat out"
        self.log(f"audio {kind}, {streams} streams: {report.audio_line(cell)}")
        return cell

    def audio(self) -> dict[str, Any] | None:
        if "audio" not in self.plan.scenarios:
            return None
        version = find_audio_model(self.repository)
        repository = self.repository
        stand_in = version is None
        if version is None:
            repository = self.workdir / "audio-repository"
            version = write_stand_in(repository)
        self.log(f"audio model {version} (stand-in: {stand_in}); offline speed")
        device = select_device(self.config.device)  # the device the servers will pick
        on_cpu = device.type == "cpu"
        batches = self.plan.offline_batches if on_cpu else self.plan.gpu_offline_batches
        offline = offline_windows_per_second(
            version,
            list(batches),
            2.0,
            threads=self.config.torch_threads,
            device=device,
            precision=self.config.audio_precision,
            cuda_graphs=self.config.cuda_graphs,
        )
        manifest = json.loads((version / "manifest.json").read_text())
        rate = int(manifest["frontend"]["sample_rate"])
        self.hop_seconds = float(manifest["frontend"]["default_hop_seconds"])
        name = str(manifest["name"])
        results: dict[str, Any] = {
            "model": name,
            **describe(manifest),
            "device": str(device),
            "stand_in": stand_in,
            "offline_windows_per_second": {str(k): v for k, v in offline.items()},
            "max_batch_size": self.config.audio_max_batch_size,
            "audio_precision": self.config.audio_precision,
            "cuda_graphs": self.config.cuda_graphs,
            "max_queue_delay_ms": self.config.max_queue_delay_ms,
            "torch_threads": torch.get_num_threads(),  # as the offline runs and servers set it
            "stream_phases": self.plan.stream_phases,
            "stream_spread_seconds": (
                self.hop_seconds
                if self.plan.stream_phases == "random"
                else AudioSpec.spread_seconds
            ),
            "stream_audio_seconds": self.plan.stream_audio_seconds,
            "stream_chunk_seconds": self.plan.stream_chunk_seconds,
        }
        handle = start_server_process(repository, {"GENRE_MODELS": name})
        try:
            base = {
                "kind": "audio",
                "target": handle.target,
                "model": name,
                "sample_rate": rate,
                "metrics_port": handle.metrics_port,
            }
            results["fast_one"] = self._audio_cell(base, 1, realtime=False)  # warms the server
            sustained = 0
            results["realtime"] = []
            for streams in self.plan.stream_counts:
                cell = self._audio_cell(base, streams, realtime=True)
                results["realtime"].append(cell)
                ok = (
                    "failed" not in cell
                    and "invalid" not in cell
                    and not cell["errors"]
                    and cell["p99_ms"] < verdicts.REALTIME_P99_MS
                )
                if not ok:
                    break
                sustained = streams
            results["sustained_streams"] = sustained
            results["fast_many"] = self._audio_cell(base, self.plan.fast_streams, realtime=False)
        finally:
            handle.stop()
        return results


def main(argv: list[str] | None = None) -> int:
    args, plan = parse_arguments(argv, __doc__)
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine.describe(), "plan": asdict(plan)}
    with tempfile.TemporaryDirectory(prefix="genre-bench-") as scratch:
        harness = Harness(plan, args.repository.resolve(), args.model, Path(scratch))
        harness.features()
        results["device"] = str(select_device(harness.config.device))
        results["audio"] = harness.audio()
        results["cells"] = harness.cells
        results["skipped"] = harness.skipped
    results["machine"]["load_average_at_end"] = machine.load_average()
    results["seconds"] = time.monotonic() - started
    results["targets"] = verdicts.targets(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (args.out / "benchmarks.md").write_text(report.markdown(results))
    print(report.markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
