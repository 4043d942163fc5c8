"""A bounded soak: mixed ClassifyFeatures callers and audio streams against one server process.

Memory must stay flat and no call may fail. Every second it samples the server's RSS and its
event-loop task count; at the end it writes ``soak.json`` and ``soak.md`` and exits non-zero if
any call failed or memory kept growing (second-half median RSS more than ``--max-growth-mib``
above the first half's).

    .venv/bin/python -m bench.soak --seconds 300            # the long mode (documented)
    .venv/bin/python -m bench.soak --seconds 10 --out DIR    # the short mode CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
import numpy as np

from bench.scrape import metrics_text, sample_value
from bench.server_process import ServerProcess, rss_bytes, start_server_process
from genre.v1 import genre_pb2, genre_pb2_grpc

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class SoakReport:
    seconds: float
    feature_callers: int
    streams: int
    calls_ok: int = 0
    windows_ok: int = 0
    streams_ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rss_mib: list[float] = field(default_factory=list)
    tasks: list[float] = field(default_factory=list)
    rss_growth_mib: float = 0.0
    passed: bool = False


def event_loop_tasks(server: ServerProcess) -> float:
    return sample_value(metrics_text(server.metrics_port), "genre_event_loop_tasks")


def tone(seconds: float, sample_rate: int, seed: int) -> bytes:
    """A few harmonics and noise as 16-bit PCM: enough signal for a stream to chew on."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    signal = sum(np.sin(2 * np.pi * rng.uniform(100, 800) * t) for _ in range(3)) / 4
    noisy = signal + 0.05 * rng.standard_normal(t.size)
    return (np.clip(noisy, -1, 1) * 32767).astype("<i2").tobytes()


async def feature_caller(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
    request: genre_pb2.ClassifyFeaturesRequest,
    stop_at: float,
    report: SoakReport,
    errors: Counter[str],
) -> None:
    while time.monotonic() < stop_at:
        try:
            await stub.ClassifyFeatures(request, timeout=10)
            report.calls_ok += 1
        except grpc.aio.AioRpcError as error:
            errors[f"ClassifyFeatures {error.code().name}"] += 1


async def streamer(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
    model: genre_pb2.ModelVersionInfo,
    stop_at: float,
    report: SoakReport,
    errors: Counter[str],
    seed: int,
) -> None:
    rate = model.audio.sample_rate
    audio = tone(8.0, rate, seed)
    chunk = rate // 5 * 2  # 0.2 s of 16-bit mono

    async def requests() -> AsyncIterator[genre_pb2.ClassifyAudioStreamRequest]:
        yield genre_pb2.ClassifyAudioStreamRequest(
            config=genre_pb2.StreamConfig(
                model=model.model, sample_rate=rate, encoding=genre_pb2.PCM_S16LE, channels=1
            )
        )
        for start in range(0, len(audio), chunk):
            yield genre_pb2.ClassifyAudioStreamRequest(
                audio=genre_pb2.AudioChunk(data=audio[start : start + chunk])
            )
            await asyncio.sleep(0.05)  # four times real time: many windows, still paced

    while time.monotonic() < stop_at:
        try:
            async for response in stub.ClassifyAudioStream(requests(), timeout=120):
                report.windows_ok += not response.final
            report.streams_ok += 1
        except grpc.aio.AioRpcError as error:
            errors[f"ClassifyAudioStream {error.code().name}"] += 1


async def sample_server(server: ServerProcess, stop_at: float, report: SoakReport) -> None:
    while time.monotonic() < stop_at:
        report.rss_mib.append(round(rss_bytes(server.process.pid) / 2**20, 1))
        report.tasks.append(await asyncio.to_thread(event_loop_tasks, server))
        await asyncio.sleep(1.0)


async def soak(server: ServerProcess, report: SoakReport) -> None:
    errors: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = genre_pb2_grpc.GenreClassifierStub(channel)
        listing = await stub.ListModels(genre_pb2.ListModelsRequest())
        defaults = [m for m in listing.models if m.is_default]
        features = [m for m in defaults if m.kind == genre_pb2.FEATURES]
        audio = [m for m in defaults if m.kind == genre_pb2.AUDIO]
        stop_at = time.monotonic() + report.seconds
        work = [asyncio.ensure_future(sample_server(server, stop_at, report))]
        for index in range(report.feature_callers if features else 0):
            model = features[index % len(features)]
            request = genre_pb2.ClassifyFeaturesRequest(
                model=model.model,
                rows=[genre_pb2.FeatureRow(features={f.name: 0.5 for f in model.features})] * 4,
            )
            work.append(
                asyncio.ensure_future(feature_caller(stub, request, stop_at, report, errors))
            )
        for index in range(report.streams if audio else 0):
            model = audio[index % len(audio)]
            work.append(
                asyncio.ensure_future(streamer(stub, model, stop_at, report, errors, index))
            )
        await asyncio.gather(*work)
    report.errors = dict(errors)


def verdict(report: SoakReport, max_growth_mib: float) -> None:
    half = len(report.rss_mib) // 2
    if half >= 2:
        first = statistics.median(report.rss_mib[:half])
        second = statistics.median(report.rss_mib[half:])
        report.rss_growth_mib = round(second - first, 1)
    report.passed = (
        not report.errors and report.calls_ok > 0 and (report.rss_growth_mib <= max_growth_mib)
    )


def markdown(report: SoakReport) -> str:
    rss = report.rss_mib or [float("nan")]
    return "\n".join(
        [
            f"Soak of {report.seconds:g} s: {report.feature_callers} feature callers (4 rows per "
            f"call) and {report.streams} audio streams at 4x real time, one server process.",
            "",
            "| calls ok | windows ok | streams ok | errors | RSS start / max / end MiB | "
            "RSS growth (median 2nd half - 1st half) | tasks start / end | verdict |",
            "|---:|---:|---:|---|---|---:|---|---|",
            f"| {report.calls_ok:,} | {report.windows_ok:,} | {report.streams_ok} | "
            f"{report.errors or 'none'} | {rss[0]:.0f} / {max(rss):.0f} / {rss[-1]:.0f} | "
            f"{report.rss_growth_mib:+.1f} MiB | "
            f"{report.tasks[0] if report.tasks else '-'} / "
            f"{report.tasks[-1] if report.tasks else '-'} | "
            f"{'pass' if report.passed else 'FAIL'} |",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Bounded soak of one genre-serve process.")
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--repository", type=Path, default=REPOSITORY_ROOT / "models")
    parser.add_argument("--feature-callers", type=int, default=8)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--max-growth-mib", type=float, default=32.0)
    parser.add_argument("--out", type=Path, default=REPOSITORY_ROOT / "bench" / "results")
    args = parser.parse_args()
    report = SoakReport(args.seconds, args.feature_callers, args.streams)
    server = start_server_process(args.repository, {"GENRE_LOG_LEVEL": "info"})
    try:
        asyncio.run(soak(server, report))
    finally:
        exit_code = server.stop()
    if exit_code != 0:
        report.errors["server exit code"] = exit_code
    verdict(report, args.max_growth_mib)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    (args.out / "soak.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
