"""A flood of streams: how many of the workers' slots the pod fills when streams arrive at once.

    .venv/bin/python -m bench.studies.flood                       # 2 workers x 32 slots, 64 streams
    .venv/bin/python -m bench.studies.flood --workers 8 --slots 256 --streams 2048 --connections 32

The kernel deals connections, not streams, over the worker processes, so with a stream limit per
worker a flood filled the workers that drew many connections and left slots free on the others
(1,792 of 2,048 on an H200 with eight workers). The limit is now the pod's (``server.pod.shares``).
This opens ``streams`` streams as fast as it can over ``connections`` connections (dealt in turn),
each sending its config and one chunk, then holding; counts the ones answered and the ones
refused RESOURCE_EXHAUSTED, and reports the admitted share of ``workers x slots``. Capacity
admission and the latency guard are turned off (``GENRE_STREAM_ADMISSION_LOAD=0``,
``GENRE_STREAM_LATENCY_BOUND_MS=0``) so the slot limit alone is measured. The CNN-LSTM alone
(``gtzan-cnn-lstm`` version 2) answers the chunk. Results: ``results/flood/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bench import machine
from bench.plan import REPOSITORY_ROOT, RESULTS
from bench.server_process import start_server_process
from genre.v1 import genre_pb2, genre_pb2_grpc

MODEL, VERSION, RATE = "gtzan-cnn-lstm", "2", 22050
Request = genre_pb2.ClassifyAudioStreamRequest


async def hold_stream(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
    chunk: bytes,
    settled: asyncio.Future[str],
    release: asyncio.Event,
) -> None:
    """Opens a stream and settles ``settled`` with "OK" once it is answered (then holds it until
    ``release``) or with the status it was refused with."""

    async def requests() -> Any:
        yield Request(
            config=genre_pb2.StreamConfig(
                model=genre_pb2.ModelRef(name=MODEL, version=VERSION),
                sample_rate=RATE,
                encoding=genre_pb2.PCM_S16LE,
                channels=1,
            )
        )
        yield Request(audio=genre_pb2.AudioChunk(data=chunk))
        await release.wait()

    call = stub.ClassifyAudioStream(requests(), timeout=300)
    try:
        await call.read()
        settled.set_result("OK")
        await release.wait()
    except grpc.aio.AioRpcError as error:
        settled.set_result(error.code().name)
    finally:
        call.cancel()


async def flood(target: str, streams: int, connections: int) -> Counter[str]:
    chunk = (np.random.default_rng(0).standard_normal(3 * RATE) * 3000).astype("<i2").tobytes()
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(connections)]
    loop = asyncio.get_running_loop()
    release = asyncio.Event()
    try:
        stubs = [genre_pb2_grpc.GenreClassifierStub(channel) for channel in channels]
        settled: list[asyncio.Future[str]] = [loop.create_future() for _ in range(streams)]
        tasks = [
            asyncio.ensure_future(hold_stream(stubs[i % connections], chunk, settled[i], release))
            for i in range(streams)
        ]
        outcomes = Counter(await asyncio.gather(*settled))  # every stream in or refused
        release.set()
        await asyncio.gather(*tasks)
        return outcomes
    finally:
        for channel in channels:
            await channel.close(None)


def measure(workers: int, slots: int, streams: int, connections: int) -> dict[str, Any]:
    server = start_server_process(
        REPOSITORY_ROOT / "models",
        {
            "GENRE_MODELS": MODEL,
            "GENRE_PINNED_VERSIONS": f"{MODEL}={VERSION}",
            "GENRE_WORKERS": str(workers),
            "GENRE_MAX_STREAMS": str(slots),
            "GENRE_STREAM_ADMISSION_LOAD": "0",
            "GENRE_STREAM_LATENCY_BOUND_MS": "0",
        },
    )
    try:
        outcomes = asyncio.run(flood(server.target, streams, connections))
    finally:
        server.stop()
    capacity = workers * slots
    return {
        "machine": machine.describe(),
        "workers": workers,
        "slots_per_worker": slots,
        "streams": streams,
        "connections": connections,
        "outcomes": dict(outcomes),
        "admitted": outcomes["OK"],
        "capacity": capacity,
        "admitted_share": outcomes["OK"] / capacity,
    }


def markdown(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            "# A flood of streams",
            "",
            f"`python -m bench.studies.flood`: {result['streams']} streams opened at once over "
            f"{result['connections']} connections to {result['workers']} workers with "
            f"{result['slots_per_worker']} slots each (`GENRE_MAX_STREAMS`), slot limit alone. "
            f"Machine: {result['machine']['cpu_model']}, {result['machine']['cpu_count']} CPUs.",
            "",
            f"Admitted {result['admitted']} of {result['capacity']} slots "
            f"(**{result['admitted_share']:.1%}**, target at least 95%); outcomes "
            f"{result['outcomes']}.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS / "flood")
    args = parser.parse_args(argv)
    result = measure(args.workers, args.slots, args.streams, args.connections)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "flood.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "flood.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
