"""Live audio streams against 1 and N worker processes: how many stay real time, and flat out.

For each worker count the server runs one audio model version (``--pin``) with admission off
(``GENRE_STREAM_ADMISSION_LOAD=0``, ``GENRE_STREAM_LATENCY_BOUND_MS=0``, streams limit raised) so
the search finds what the processes can carry, not what admission allows. ``--clients`` load
processes (``bench.load``) run at once, each with its share of the streams over several connections
of its own, so the kernel spreads them over the workers; the merged p99 is the highest of the
clients' p99s (each client holds a random share of the streams, so this bounds the pooled p99 from
above). Real-time streams send ``--chunk-seconds`` chunks (0.1 s; runs before issue #24 sent
0.25) as a live source would, starts spread evenly over one hop; a count whose p99 passes 250 ms
or that has errors ends the search. Flat-out streams send 0.25-s chunks as fast as flow control
allows, measured against the model's own offline windows/s on the same device.
``--overload`` then starts a server with admission on (the defaults: capacity share and the latency
bound; the streams limit raised unless ``--overload-default-limit``) for each of ``--overload-
workers``, sends that many real-time streams with their starts spread over ``--overload-spread``
seconds (live sources arriving, not a flood, which ``GENRE_MAX_STREAMS`` is for), and records every
status they ended with: RESOURCE_EXHAUSTED for those refused is the promise, and the admitted ones'
p99.

    .venv/bin/python -m bench.studies.workers_streams --workers 1,4,8 \
        --stream-counts 1024,2048,4096,6144 --pin gtzan-cnn-lstm=2 \
        --out bench/results/workers-gpu-h200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.audio_model import offline_windows_per_second
from bench.clients import finish_client, start_client
from bench.machine import describe
from bench.plan import DEFAULT_CHUNK_SECONDS, REPOSITORY_ROOT
from bench.scrape import metrics_text
from bench.server_process import ServerProcess, start_server_process
from bench.verdicts import REALTIME_P99_MS

CHANNELS_PER_WORKER = 4
FLAT_OUT_CHUNK_SECONDS = 0.25  # flat-out streams keep the chunk their committed runs sent


def merged(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums of counts and rates; the highest of each latency percentile."""
    failed = [r["failed"] for r in results if "failed" in r]
    if failed:
        return {"failed": failed[0]}
    errors: dict[str, int] = {}
    for result in results:
        for code, count in result["errors"].items():
            errors[code] = errors.get(code, 0) + count
    return {
        "streams": sum(r["streams"] for r in results),
        "windows_per_second": sum(r["windows_per_second"] for r in results),
        "audio_seconds_per_wall_second": sum(r["audio_seconds_per_wall_second"] for r in results),
        **{key: max(r[key] for r in results) for key in ("p50_ms", "p90_ms", "p99_ms")},
        "errors": errors,
        "wall_seconds": max(r["wall_seconds"] for r in results),
    }


def stream_statuses(metrics_port: int) -> dict[str, float]:
    """How the server ended each stream, from its own /metrics: the aio client reports some
    refusals as INTERNAL (grpc/grpc#36066), the server's count says what it sent."""
    statuses: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text(metrics_port)):
        for sample in family.samples:
            if (
                sample.name == "genre_requests_total"
                and sample.labels.get("method") == "ClassifyAudioStream"
            ):
                status = sample.labels["status"]
                statuses[status] = statuses.get(status, 0.0) + sample.value
    return statuses


class Probe:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.name, _, version = str(args.pin).partition("=")
        self.version_directory = args.repository / self.name / version
        manifest = json.loads((self.version_directory / "manifest.json").read_text())
        self.sample_rate = int(manifest["frontend"]["sample_rate"])
        self.hop_seconds = float(manifest["frontend"]["default_hop_seconds"])

    def server(self, workers: int, admission: bool, raise_limit: bool = True) -> ServerProcess:
        env = {
            "GENRE_WORKERS": str(workers),
            "GENRE_MODELS": self.name,
            "GENRE_PINNED_VERSIONS": self.args.pin,
            "GENRE_AUDIO_MAX_QUEUE_WINDOWS": "65536",
        }
        if raise_limit:
            env["GENRE_MAX_STREAMS"] = "100000"
        if not admission:
            env["GENRE_STREAM_ADMISSION_LOAD"] = "0"
            env["GENRE_STREAM_LATENCY_BOUND_MS"] = "0"
        return start_server_process(self.args.repository, env, timeout=300)

    def cell(
        self,
        server: ServerProcess,
        workers: int,
        streams: int,
        realtime: bool,
        spread_seconds: float = 0.0,
    ) -> dict[str, Any]:
        clients = min(self.args.clients, streams)
        channels = max(1, CHANNELS_PER_WORKER * workers // clients)
        specs = [
            {
                "kind": "audio",
                "target": server.target,
                "model": self.name,
                "sample_rate": self.sample_rate,
                "streams": streams // clients + (1 if index < streams % clients else 0),
                "audio_seconds": self.args.seconds if realtime else self.args.flat_seconds,
                "realtime": realtime,
                "chunk_seconds": self.args.chunk_seconds if realtime else FLAT_OUT_CHUNK_SECONDS,
                "spread_seconds": spread_seconds or self.hop_seconds,
                "channels": channels,
                "timeout_s": 2 * self.args.seconds + 30.0,  # a late stream ends, not hangs
            }
            for index in range(clients)
        ]
        started = time.monotonic()
        processes = [start_client(spec) for spec in specs]
        limit = 60.0 + 3 * self.args.seconds
        result = merged(
            [finish_client(p, max(1.0, limit - (time.monotonic() - started))) for p in processes]
        )
        result.update(
            workers=workers, realtime=realtime, clients=clients, channels_per_client=channels
        )
        print(json.dumps(result), file=sys.stderr, flush=True)
        return result

    def run(self, save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Measures every worker count, calling ``save`` after each, so a run cut short by a
        time limit still leaves what it measured."""
        import torch

        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        offline = offline_windows_per_second(self.version_directory, [64], 2.0, device=device)
        results: dict[str, Any] = {
            "model": self.args.pin,
            "device": str(device),
            "machine": describe(),
            "offline_windows_per_second_batch_64": offline[64],
            "hop_seconds": self.hop_seconds,
            "stream_audio_seconds": self.args.seconds,
            "stream_chunk_seconds": self.args.chunk_seconds,
            "clients": self.args.clients,
            "workers": [],
        }
        for workers in self.args.workers:
            server = self.server(workers, admission=False)
            entry: dict[str, Any] = {"workers": workers, "realtime": [], "sustained_streams": 0}
            try:
                self.cell(server, workers, self.args.clients, realtime=False)  # warm-up
                for streams in self.args.stream_counts:
                    cell = self.cell(server, workers, streams, realtime=True)
                    entry["realtime"].append(cell)
                    if "failed" in cell or cell["errors"] or cell["p99_ms"] >= REALTIME_P99_MS:
                        break
                    entry["sustained_streams"] = streams
                flat = self.cell(server, workers, self.args.flat_streams, realtime=False)
                flat["share_of_offline"] = flat.get("windows_per_second", 0.0) / offline[64]
                entry["flat_out"] = flat
            finally:
                server.stop()
            results["workers"].append(entry)
            save(results)
        results["overload"] = []
        for workers in self.args.overload_workers if self.args.overload else ():
            server = self.server(workers, True, raise_limit=not self.args.overload_default_limit)
            try:
                cell = self.cell(
                    server, workers, self.args.overload, True, self.args.overload_spread
                )
                cell["spread_seconds"] = self.args.overload_spread
                cell["max_streams"] = "default" if self.args.overload_default_limit else "raised"
                cell["server_statuses"] = stream_statuses(server.metrics_port)
                results["overload"].append(cell)
            finally:
                server.stop()
            save(results)
        return results


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Live streams and worker processes: {results['model']} on {results['device']}",
        "",
        f"Machine: {results['machine']['cpu_count']} CPUs ({results['machine']['cpu_model']}), "
        f"GPU {results['machine']['gpu']}. {results['clients']} load processes on the same "
        f"machine. Offline, batch 64: {results['offline_windows_per_second_batch_64']:,.0f} "
        f"windows/s. Real-time streams: {results['stream_audio_seconds']:.0f} s of audio each, "
        f"hop {results['hop_seconds']:g} s; p99 is the highest of the clients' p99s.",
        "",
        "| workers | streams | windows/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for entry in results["workers"]:
        for cell in [*entry["realtime"], {**entry.get("flat_out", {}), "flat": True}]:
            if "failed" in cell:
                lines.append(f"| {entry['workers']} | | | | | failed: {cell['failed']} |")
                continue
            if "streams" not in cell:
                continue
            label = f"{cell['streams']} flat out" if cell.get("flat") else str(cell["streams"])
            lines.append(
                f"| {entry['workers']} | {label} | {cell['windows_per_second']:,.0f} "
                f"| {cell['p50_ms']:.1f} | {cell['p99_ms']:.1f} | {cell['errors'] or '-'} |"
            )
    lines += [
        "",
        "| workers | real-time streams held (p99 < 250 ms) | flat out / offline |",
        "|---|---|---|",
    ]
    for entry in results["workers"]:
        share = entry.get("flat_out", {}).get("share_of_offline", float("nan"))
        lines.append(f"| {entry['workers']} | {entry['sustained_streams']} | {share:.2f} |")
    for cell in results.get("overload", []):
        lines += [
            "",
            f"Overload, {cell.get('workers')} worker(s), admission on, streams limit "
            f"{cell.get('max_streams')}: {cell.get('streams')} "
            f"real-time streams starting over {cell.get('spread_seconds')} s ended with "
            f"{cell.get('errors') or 'no error'} at the clients, "
            f"{cell.get('server_statuses')} by the server's count; the admitted ones had p99 "
            f"{cell.get('p99_ms', float('nan')):.1f} ms.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    counts = lambda text: tuple(int(part) for part in text.split(","))  # noqa: E731
    parser.add_argument("--workers", type=counts, default=(1, 4, 8))
    parser.add_argument("--stream-counts", type=counts, default=(1024, 2048, 4096, 6144))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--chunk-seconds", type=float, default=DEFAULT_CHUNK_SECONDS)
    parser.add_argument("--flat-streams", type=int, default=256)
    parser.add_argument("--flat-seconds", type=float, default=30.0)
    parser.add_argument("--overload", type=int, default=0)
    parser.add_argument("--overload-workers", type=counts, default=(1,))
    parser.add_argument("--overload-spread", type=float, default=8.0)
    parser.add_argument(
        "--overload-default-limit",
        action="store_true",
        help="keep GENRE_MAX_STREAMS at its default (per worker) in the overload cells",
    )
    parser.add_argument("--pin", default="gtzan-cnn-lstm=2")
    parser.add_argument("--repository", type=Path, default=REPOSITORY_ROOT / "models")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    def save(results: dict[str, Any]) -> None:
        (args.out / "streams.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out / "streams.md").write_text(markdown(results))

    save(Probe(args).run(save))
    return 0


if __name__ == "__main__":
    sys.exit(main())
