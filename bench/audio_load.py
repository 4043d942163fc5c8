"""Audio streams for the load client: N concurrent ClassifyAudioStream calls, paced or flat out.

Real-time streams send one chunk every ``chunk_seconds`` as a live source would (each chunk at
the moment its last sample exists), their starts spread over ``spread_seconds`` so windows do not
all complete at once: evenly (``phases="even"``, the default), or at seeded uniformly random
offsets (``phases="random"``), as independent live sources would start, whose windows now and
then complete together. A window's latency runs from sending the chunk that completed it to
receiving its response. Flat-out streams send every chunk as fast as gRPC flow control allows;
their figure is audio seconds classified per wall second. The model versions that answered are
recorded from the responses, so a result says which version it measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import resource
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from bench.channel import CHANNEL_OPTIONS
from bench.scrape import scrape, server_figures
from bench.stability import percentiles_ms
from genre.v1 import genre_pb2

STREAM_METHOD = "/genre.v1.GenreClassifier/ClassifyAudioStream"


@dataclass(frozen=True)
class AudioSpec:
    target: str
    model: str
    sample_rate: int
    streams: int
    audio_seconds: float
    chunk_seconds: float = 0.1  # a live source's 100 ms (issue #24; 0.25 before)
    realtime: bool = True
    spread_seconds: float = 1.0
    phases: str = "even"  # or "random"
    phase_seed: int = 0
    timeout_s: float = 120.0
    metrics_port: int = 0
    # Several connections (each its own, not grpc's shared subchannel pool), the streams dealt
    # over them in turn: the kernel spreads connections, not streams, over worker processes.
    channels: int = 1


@dataclass
class _StreamOutcome:
    latencies: list[float]
    windows: int
    audio_seconds: float
    versions: set[str]
    error: str | None = None


async def _one_stream(
    open_stream: grpc.aio.StreamStreamMultiCallable[
        genre_pb2.ClassifyAudioStreamRequest, genre_pb2.ClassifyAudioStreamResponse
    ],
    spec: AudioSpec,
    chunk: bytes,
    offset: float,
) -> _StreamOutcome:
    chunk_samples = len(chunk) // 2
    chunk_seconds = chunk_samples / spec.sample_rate  # exact, unlike spec.chunk_seconds
    chunks = max(1, round(spec.audio_seconds / chunk_seconds))
    sent_at: list[float] = []
    latencies: list[float] = []
    versions: set[str] = set()
    windows = 0
    await asyncio.sleep(offset)
    call = open_stream(None, timeout=spec.timeout_s)
    config = genre_pb2.StreamConfig(
        model=genre_pb2.ModelRef(name=spec.model),
        sample_rate=spec.sample_rate,
        encoding=genre_pb2.PCM_S16LE,
        channels=1,
    )

    async def reader() -> None:
        nonlocal windows
        async for response in call:
            if response.final:
                return
            windows += 1
            versions.add(response.model.version)
            end_sample = round(response.window_end_seconds * spec.sample_rate)
            index = max(0, math.ceil(end_sample / chunk_samples) - 1)  # the chunk completing it
            if index < len(sent_at):
                latencies.append(time.perf_counter() - sent_at[index])

    reading = asyncio.create_task(reader())
    try:
        await call.write(genre_pb2.ClassifyAudioStreamRequest(config=config))
        started = time.perf_counter()
        for index in range(chunks):
            if spec.realtime:
                await asyncio.sleep(
                    max(0.0, started + (index + 1) * chunk_seconds - time.perf_counter())
                )
            sent_at.append(time.perf_counter())
            await call.write(
                genre_pb2.ClassifyAudioStreamRequest(audio=genre_pb2.AudioChunk(data=chunk))
            )
        await call.done_writing()
        await reading
    except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
        # A stream the server refuses or ends fails the next write or read, whichever comes
        # first; the call's own status says why (a refused stream: RESOURCE_EXHAUSTED, or
        # INTERNAL where grpc.aio's write-after-end bug, grpc/grpc#36066, overwrites it).
        reading.cancel()
        with contextlib.suppress(BaseException):
            await reading
        code = await call.code()
        return _StreamOutcome(latencies, windows, 0.0, versions, code.name)
    return _StreamOutcome(latencies, windows, chunks * chunk_seconds, versions)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_offsets(spec: AudioSpec) -> list[float]:
    """Each stream's start, in seconds after the first could start."""
    if spec.phases == "even":
        return [spec.spread_seconds * i / spec.streams for i in range(spec.streams)]
    if spec.phases == "random":
        rng = np.random.default_rng(spec.phase_seed)
        return [float(x) for x in rng.uniform(0.0, spec.spread_seconds, spec.streams)]
    raise ValueError(f"phases must be even or random, got {spec.phases!r}")


async def run_audio(spec: AudioSpec) -> dict[str, Any]:
    samples = round(spec.chunk_seconds * spec.sample_rate)
    noise = np.random.default_rng(0).normal(0.0, 3000.0, samples).clip(-32768, 32767)
    chunk = noise.astype("<i2").tobytes()
    options = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
    async with contextlib.AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(grpc.aio.insecure_channel(spec.target, options=options))
            for _ in range(max(1, spec.channels))
        ]
        openers = [
            channel.stream_stream(
                STREAM_METHOD,
                request_serializer=genre_pb2.ClassifyAudioStreamRequest.SerializeToString,
                response_deserializer=genre_pb2.ClassifyAudioStreamResponse.FromString,
            )
            for channel in opened
        ]
        before = await asyncio.to_thread(scrape, spec.metrics_port)
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        outcomes = await asyncio.gather(
            *(
                _one_stream(openers[index % len(openers)], spec, chunk, offset)
                for index, offset in enumerate(start_offsets(spec))
            )
        )
        wall = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_started
        after = await asyncio.to_thread(scrape, spec.metrics_port)
    latencies = [value for outcome in outcomes for value in outcome.latencies]
    audio = sum(outcome.audio_seconds for outcome in outcomes)
    windows = sum(outcome.windows for outcome in outcomes)
    return {
        "streams": spec.streams,
        "realtime": spec.realtime,
        "wall_seconds": wall,
        "audio_seconds": audio,
        "audio_seconds_per_wall_second": audio / wall,
        "windows": windows,
        "windows_per_second": windows / wall,
        **percentiles_ms(latencies),
        "channels": spec.channels,
        "errors": dict(Counter(o.error for o in outcomes if o.error is not None)),
        "served_versions": sorted(set().union(*(outcome.versions for outcome in outcomes))),
        "client_cpu_fraction": cpu / wall,
        **server_figures(before, after),
    }
