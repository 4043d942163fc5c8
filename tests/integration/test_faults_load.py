"""Faults under load on real servers: SIGTERM, model roll-outs, overload, slow batches."""

from __future__ import annotations

import asyncio
import math
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genre.v1 import genre_pb2, genre_pb2_grpc
from modelcore.checkpoint import load_checkpoint
from modelcore.models import build_model
from modelcore.preprocessing import FeaturePreprocessor
from server.app import create_server
from server.registry import local_batcher
from tests.support.checkpoints import (
    FEATURE_NAMES,
    LABELS,
    TINY_FRONTEND,
    example_row,
    write_tiny_audio_model,
    write_tiny_model,
)
from tests.support.harness import (
    loopback_config,
    prime_concurrency,
    sample_value,
    scrape,
    start_server_process,
)
from tests.support.synthetic_audio import pcm_s16le, synth_clip

ROW = example_row()


def request(rows: int = 1, version: str = "") -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name="tiny-mlp", version=version),
        rows=[genre_pb2.FeatureRow(features=ROW)] * rows,
    )


def probabilities_of(version_directory: Path) -> list[float]:
    """What the training code computes for ROW with this version's weights."""
    checkpoint = load_checkpoint(version_directory)
    model = build_model(checkpoint.manifest.architecture).eval()
    model.load_state_dict(checkpoint.state_dict)
    preprocessor = FeaturePreprocessor.from_dict(checkpoint.manifest.preprocessing)
    matrix = np.array([[ROW.get(name, math.nan) for name in FEATURE_NAMES]])
    with torch.no_grad():
        logits = model(torch.from_numpy(preprocessor.transform(matrix)))
    temperature = checkpoint.manifest.temperature
    probabilities: list[float] = torch.softmax(logits / temperature, dim=1)[0].tolist()
    return probabilities


async def test_sigterm_under_steady_load_loses_nothing(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, "tiny-mlp")
    write_tiny_audio_model(repository, "tiny-audio")
    server = start_server_process(repository, {"GENRE_DRAIN_GRACE_SECONDS": "10"})
    statuses: Counter[grpc.StatusCode] = Counter()
    clip = pcm_s16le(synth_clip("disco", 4.0, TINY_FRONTEND.sample_rate, seed=1))

    async def caller(stub: genre_pb2_grpc.GenreClassifierAsyncStub) -> None:
        """Calls back to back; like a load-balancing client, it leaves a replica that refused."""
        while server.process.poll() is None:
            try:
                await stub.ClassifyFeatures(request(4), timeout=5)
                statuses[grpc.StatusCode.OK] += 1
            except grpc.aio.AioRpcError as error:
                statuses[error.code()] += 1
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    return

    async def paced_audio() -> AsyncIterator[genre_pb2.ClassifyAudioStreamRequest]:
        yield genre_pb2.ClassifyAudioStreamRequest(
            config=genre_pb2.StreamConfig(
                model=genre_pb2.ModelRef(name="tiny-audio"),
                sample_rate=TINY_FRONTEND.sample_rate,
                encoding=genre_pb2.PCM_S16LE,
                channels=1,
            )
        )
        for start in range(0, len(clip), 1600):  # 0.1 s per chunk at real-time pace
            yield genre_pb2.ClassifyAudioStreamRequest(
                audio=genre_pb2.AudioChunk(data=clip[start : start + 1600])
            )
            await asyncio.sleep(0.1)
        await asyncio.sleep(3600)  # a live source: it never half-closes by itself

    async def listener(stub: genre_pb2_grpc.GenreClassifierAsyncStub) -> list[bool]:
        call = stub.ClassifyAudioStream(paced_audio())
        finals = []
        while (response := await call.read()) is not grpc.aio.EOF:  # type: ignore[attr-defined]
            assert isinstance(response, genre_pb2.ClassifyAudioStreamResponse)
            finals.append(response.final)
        assert await call.code() == grpc.StatusCode.OK
        return finals

    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            streams = [asyncio.ensure_future(listener(stub)) for _ in range(2)]
            callers = [asyncio.ensure_future(caller(stub)) for _ in range(8)]
            await asyncio.sleep(1.5)
            before = statuses[grpc.StatusCode.OK]
            server.process.send_signal(signal.SIGTERM)
            finals = await asyncio.wait_for(asyncio.gather(*streams), timeout=20)
            await asyncio.wait_for(asyncio.gather(*callers), timeout=20)
        assert server.process.wait(timeout=20) == 0
    finally:
        server.stop()
    assert before > 0
    assert set(statuses) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, statuses
    assert statuses[grpc.StatusCode.UNAVAILABLE] > 0  # calls after the signal were refused
    for stream_finals in finals:
        assert stream_finals[-1]  # every open stream got its final answer, then OK
        assert not any(stream_finals[:-1])


async def test_a_rollout_under_load_is_atomic_and_a_corrupt_version_is_refused(
    tmp_path: Path,
) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, "tiny-mlp", seed=1)
    write_tiny_model(repository, "tiny-mlp", seed=2)
    app = await create_server(loopback_config(repository))
    answers: list[tuple[str, list[float]]] = []
    failures: list[grpc.StatusCode] = []
    stop = asyncio.Event()

    async def caller(stub: genre_pb2_grpc.GenreClassifierAsyncStub) -> None:
        while not stop.is_set():
            try:
                reply = await stub.ClassifyFeatures(request(), timeout=5)
            except grpc.aio.AioRpcError as error:
                failures.append(error.code())
                continue
            by_genre = {s.genre: s.probability for s in reply.results[0].scores}
            answers.append((reply.model.version, [by_genre[label] for label in LABELS]))

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            callers = [asyncio.ensure_future(caller(stub)) for _ in range(8)]
            await asyncio.sleep(0.5)
            write_tiny_model(repository, "tiny-mlp", seed=3)  # version 3 appears under load
            await app.reload()
            await asyncio.sleep(0.5)
            corrupt = write_tiny_model(repository, "tiny-mlp", seed=4)
            (corrupt / "model.safetensors").write_bytes(b"truncated")
            await app.reload()
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*callers)
    finally:
        await app.drain(grace=1.0)
    assert failures == []
    expected = {v: probabilities_of(repository / "tiny-mlp" / v) for v in ("2", "3")}
    seen = Counter(version for version, _ in answers)
    assert set(seen) == {"2", "3"}, seen  # never the corrupt version 4
    assert answers[-1][0] == "3"  # the corrupt version did not displace version 3
    for version, probabilities in answers:  # each call answered wholly by the version it names
        np.testing.assert_allclose(probabilities, expected[version], atol=1e-5)


async def test_ten_times_capacity_is_shed_fast_and_the_server_recovers(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    # A wide model makes compute, not gRPC, the bottleneck: a 32-row pass takes milliseconds,
    # so 80 callers arriving at once offer about ten times what the queue can hold.
    write_tiny_model(repository, "tiny-mlp", hidden=(2048, 2048, 2048))
    app = await create_server(
        loopback_config(
            repository,
            max_batch_size=32,
            max_queue_rows=64,
            max_queue_delay_ms=20,
            torch_threads=1,
            device="cpu",  # slow compute is the premise; a GPU would drain the queue at once
        )
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            await prime_concurrency(stub, "tiny-mlp", ROW, 16)

            async def one() -> grpc.StatusCode:
                try:
                    await stub.ClassifyFeatures(request(8), timeout=10)
                except grpc.aio.AioRpcError as error:
                    return error.code()
                return grpc.StatusCode.OK

            # 80 callers of 8 rows each: ten times the 64 rows the queue holds
            outcomes = Counter(await asyncio.gather(*(one() for _ in range(80))))
            assert set(outcomes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
            assert outcomes[grpc.StatusCode.RESOURCE_EXHAUSTED] >= 40, outcomes
            recovered = [await one() for _ in range(20)]
            assert recovered == [grpc.StatusCode.OK] * 20
        text = scrape(app.metrics_port)
        assert sample_value(text, "genre_queue_rows") == 0
        assert sample_value(text, "genre_in_flight_requests") == 0
    finally:
        await app.drain(grace=1.0)


async def test_a_long_batch_does_not_block_the_health_check(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, "big-mlp", hidden=(2048, 2048, 2048))
    app = await create_server(loopback_config(repository, torch_threads=1, device="cpu"))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            big = genre_pb2.ClassifyFeaturesRequest(
                model=genre_pb2.ModelRef(name="big-mlp"),
                rows=[genre_pb2.FeatureRow(features=ROW)] * 4096,
            )
            slow = asyncio.ensure_future(stub.ClassifyFeatures(big, timeout=60))
            batcher = local_batcher(app.registry.resolve("big-mlp", ""))
            while not (batcher.queued_rows == 0 and app.state.active_calls == 1):
                await asyncio.sleep(0.005)  # the batch has left the queue: it is computing
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            assert not slow.done(), "the batch finished before health answered; make it longer"
            assert len((await slow).results) == 4096
    finally:
        await app.drain(grace=1.0)


AUDIT_HOOK = """
import os, sys
repository = os.path.realpath(sys.argv[1])
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        mode, flags = args[1], args[2]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags & WRITE)
        if path.startswith(repository) and writes:
            print("REPOSITORY_WRITE", path, file=sys.stderr, flush=True)
sys.addaudithook(hook)
from server.__main__ import main
sys.exit(main([]))
"""


async def test_the_server_never_writes_into_the_model_repository(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, "tiny-mlp")
    write_tiny_audio_model(repository, "tiny-audio")
    command = (sys.executable, "-c", AUDIT_HOOK, str(repository))
    server = start_server_process(repository, command=command)
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            await stub.ClassifyFeatures(request(3))
            write_tiny_model(repository, "tiny-mlp", seed=5)  # a new version, then a reload
            server.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while (await stub.ClassifyFeatures(request())).model.version != "2":
                assert time.monotonic() < deadline, "the new version never went live"
                await asyncio.sleep(0.1)
    finally:
        assert server.stop() == 0
    assert server.raw_lines, "the server's stderr was not captured"
    assert not [line for line in server.raw_lines if line.startswith("REPOSITORY_WRITE")]
