"""What one audio message costs the server: the same streams sent in small and in large chunks.

    .venv/bin/python -m bench.studies.message_cost          # 3 rounds, results/message-cost/
    .venv/bin/python -m bench.studies.message_cost --rounds 1 --tracks 4 --out /tmp/message-cost
    .venv/bin/python -m bench.studies.message_cost --server echo  # the gRPC stack's own share

One server process (``GENRE_WORKERS=1``) serves the CNN-LSTM alone (``gtzan-cnn-lstm`` pinned to
version 2: a window costs milliseconds, not the ensemble's 45, so the model does not drown the
difference). ``tracks`` streams of ``seconds`` of audio each, hop 3 s, are sent in real time (as
live sources send: each message wakes the server on its own; ``--flat-out`` lets gRPC coalesce
them), once as 100 ms chunks and once as 1 s chunks: the same audio, the same windows, ten times
the messages.
The server's CPU (its process tree, from /proc) in the first case minus the second, divided by
the difference in messages, is the CPU one message costs beyond its share of the windows; rounds
alternate the two cases, so drift on a shared machine hits both. The issue's protocol (#24): 16
tracks of 30 s, 4,800 against 480 messages, 176 windows each way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bench import machine
from bench.cpu import tree_cpu_seconds
from bench.plan import REPOSITORY_ROOT, RESULTS
from bench.server_process import ServerProcess, start_server_process
from genre.v1 import genre_pb2, genre_pb2_grpc

MODEL, VERSION, RATE = "gtzan-cnn-lstm", "2", 22050
CHUNKS = (0.1, 1.0)


def track(seconds: float, seed: int) -> bytes:
    """A seeded mix of tones and noise as 16-bit PCM: music-like enough for the model to score."""
    generator = np.random.default_rng(seed)
    time_axis = np.arange(int(seconds * RATE)) / RATE
    tones = sum(
        np.sin(2 * np.pi * frequency * time_axis) / (index + 1)
        for index, frequency in enumerate(generator.uniform(110, 880, 4))
    )
    signal = 0.3 * tones / 2 + 0.05 * generator.standard_normal(time_axis.size)
    return bytes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())


async def stream(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
    audio: bytes,
    chunk_seconds: float,
    realtime: bool,
    offset: float,
) -> tuple[int, int]:
    """Sends one track, each chunk when a live source would have it (``realtime``, starting
    ``offset`` seconds late) or flat out; (messages sent, windows answered)."""
    step = int(chunk_seconds * RATE) * 2
    chunks = [audio[offset : offset + step] for offset in range(0, len(audio), step)]
    await asyncio.sleep(offset)
    started = time.monotonic()

    async def requests() -> Any:
        yield genre_pb2.ClassifyAudioStreamRequest(
            config=genre_pb2.StreamConfig(
                model=genre_pb2.ModelRef(name=MODEL, version=VERSION),
                sample_rate=RATE,
                encoding=genre_pb2.PCM_S16LE,
                channels=1,
                hop_seconds=3.0,
            )
        )
        for index, chunk in enumerate(chunks):
            if realtime:
                await asyncio.sleep(
                    max(0.0, started + (index + 1) * chunk_seconds - time.monotonic())
                )
            yield genre_pb2.ClassifyAudioStreamRequest(audio=genre_pb2.AudioChunk(data=chunk))

    windows = 0
    async for response in stub.ClassifyAudioStream(requests(), timeout=600):
        windows += not response.final
    return len(chunks), windows


async def one_case(
    target: str, tracks: list[bytes], chunk_seconds: float, realtime: bool
) -> tuple[int, int]:
    """Every track at once; live streams start spread over one chunk, as independent sources."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = genre_pb2_grpc.GenreClassifierStub(channel)
        spread = chunk_seconds / len(tracks)
        results = await asyncio.gather(
            *(
                stream(stub, audio, chunk_seconds, realtime, index * spread if realtime else 0.0)
                for index, audio in enumerate(tracks)
            )
        )
    return sum(r[0] for r in results), sum(r[1] for r in results)


def start(server_kind: str) -> ServerProcess:
    """Ours with the CNN-LSTM alone, or the echo ceiling (one pre-built update per hop)."""
    models = REPOSITORY_ROOT / "models"
    if server_kind == "echo":
        manifest = models / MODEL / VERSION / "manifest.json"
        command = (sys.executable, "-m", "bench.peers.echo", "--manifest", str(manifest))
        return start_server_process(None, command=command)
    return start_server_process(
        models,
        {
            "GENRE_MODELS": MODEL,
            "GENRE_PINNED_VERSIONS": f"{MODEL}={VERSION}",
            "GENRE_WORKERS": "1",
        },
    )


def measure(
    rounds: int, tracks: int, seconds: float, realtime: bool, server_kind: str = "ours"
) -> dict[str, Any]:
    audio = [track(seconds, seed) for seed in range(tracks)]
    server = start(server_kind)
    cases: list[dict[str, Any]] = []
    try:
        asyncio.run(one_case(server.target, audio[:1], 1.0, realtime=False))  # warm-up
        for round_index in range(rounds):
            order = CHUNKS if round_index % 2 == 0 else CHUNKS[::-1]
            for chunk_seconds in order:
                load = machine.load_average()
                before = tree_cpu_seconds(server.process.pid)
                started = time.perf_counter()
                messages, windows = asyncio.run(
                    one_case(server.target, audio, chunk_seconds, realtime)
                )
                cases.append(
                    {
                        "round": round_index,
                        "chunk_seconds": chunk_seconds,
                        "messages": messages,
                        "windows": windows,
                        "server_cpu_seconds": tree_cpu_seconds(server.process.pid) - before,
                        "wall_seconds": time.perf_counter() - started,
                        "load_average_before": load,
                    }
                )
                print(f"[message_cost] {cases[-1]}", file=sys.stderr, flush=True)
    finally:
        server.stop()
    per_round = []
    for round_index in range(rounds):
        small, large = (
            next(c for c in cases if c["round"] == round_index and c["chunk_seconds"] == chunk)
            for chunk in CHUNKS
        )
        extra = small["server_cpu_seconds"] - large["server_cpu_seconds"]
        per_round.append(1e6 * extra / (small["messages"] - large["messages"]))
    return {
        "machine": machine.describe(),
        "server": server_kind,
        "model": f"{MODEL}/{VERSION}" if server_kind == "ours" else "none (echo ceiling)",
        "tracks": tracks,
        "track_seconds": seconds,
        "hop_seconds": 3.0,
        "realtime": realtime,
        "cases": cases,
        "microseconds_per_message": per_round,
        "median_microseconds_per_message": statistics.median(per_round),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Server CPU per audio message",
        "",
        f"`python -m bench.studies.message_cost --server {result.get('server', 'ours')}`: "
        f"one server process, model `{result['model']}`, "
        f"{result['tracks']} tracks of {result['track_seconds']:g} s at hop 3 s, "
        f"{'in real time' if result['realtime'] else 'flat out'}, "
        "as 100 ms and as 1 s chunks (same audio, same windows). "
        f"Machine: {result['machine']['cpu_model']}, {result['machine']['cpu_count']} CPUs.",
        "",
        "| round | chunk | messages | windows | server CPU s | wall s | 1-min load before |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in result["cases"]:
        lines.append(
            f"| {case['round']} | {case['chunk_seconds']:g} s | {case['messages']:,} | "
            f"{case['windows']} | {case['server_cpu_seconds']:.2f} | {case['wall_seconds']:.1f} | "
            f"{case['load_average_before'][0]:.1f} |"
        )
    per = ", ".join(f"{value:.1f}" for value in result["microseconds_per_message"])
    lines += [
        "",
        f"CPU per message beyond its windows, µs (each round): {per}; "
        f"median **{result['median_microseconds_per_message']:.1f} µs** (target: at most 60).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tracks", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--flat-out", action="store_true", help="send as fast as possible, not in real time"
    )
    parser.add_argument(
        "--server",
        choices=("ours", "echo"),
        default="ours",
        help="echo: the ceiling, which reads every message and answers pre-built updates",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "message-cost")
    args = parser.parse_args(argv)
    result = measure(args.rounds, args.tracks, args.seconds, not args.flat_out, args.server)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "message_cost" if args.server == "ours" else f"message_cost_{args.server}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
