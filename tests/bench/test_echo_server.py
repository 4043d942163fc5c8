"""The echo ceiling answers every ClassifyFeatures call with a response the size of ours, and
N echo processes share one port the way ours's workers do."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from bench.endpoints import CLASSIFY, echo_servers
from bench.peers.echo import EchoServicer
from bench.server_process import start_server_process
from genre.v1 import genre_pb2, genre_pb2_grpc
from server.features import ranked
from server.handlers import add_servicer
from tests.support.checkpoints import write_tiny_model

LABELS = ("blues", "classical", "jazz", "metal")


@pytest.fixture
async def stub() -> AsyncIterator[genre_pb2_grpc.GenreClassifierAsyncStub]:
    server = grpc.aio.server()
    add_servicer(EchoServicer(LABELS, "some-model"), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield genre_pb2_grpc.GenreClassifierStub(channel)
    finally:
        await server.stop(None)


def ours(rows: int) -> genre_pb2.ClassifyFeaturesResponse:
    """What genre-serve sends for ``rows`` rows of a 4-class model (no zero probabilities)."""
    probabilities = np.tile(np.asarray([0.4, 0.3, 0.2, 0.1], dtype=np.float32), (rows, 1))
    return genre_pb2.ClassifyFeaturesResponse(
        model=genre_pb2.ModelRef(name="some-model", version="1"),
        results=ranked(probabilities, LABELS, top_k=0),
    )


async def test_named_rows_get_one_full_classification_each(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    request = genre_pb2.ClassifyFeaturesRequest(
        rows=[genre_pb2.FeatureRow(features={"tempo": 1.0}) for _ in range(3)]
    )
    response = await stub.ClassifyFeatures(request)
    assert len(response.results) == 3
    assert {score.genre for score in response.results[0].scores} == set(LABELS)
    assert response.ByteSize() == ours(3).ByteSize()


async def test_a_stream_gets_one_update_per_hop_of_audio_then_a_final_one(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    rate, hop_seconds = 8000, 1.5
    chunk = b"\x00\x01" * (rate // 10)  # 100 ms of 16-bit mono

    async def requests() -> AsyncIterator[genre_pb2.ClassifyAudioStreamRequest]:
        yield genre_pb2.ClassifyAudioStreamRequest(
            config=genre_pb2.StreamConfig(
                model=genre_pb2.ModelRef(name="some-model"),
                sample_rate=rate,
                encoding=genre_pb2.PCM_S16LE,
                channels=1,
                hop_seconds=hop_seconds,
            )
        )
        for _ in range(47):  # 4.7 s: three whole hops and part of a fourth
            yield genre_pb2.ClassifyAudioStreamRequest(audio=genre_pb2.AudioChunk(data=chunk))

    updates = [update async for update in stub.ClassifyAudioStream(requests())]
    assert [update.final for update in updates] == [False, False, False, True]
    assert {score.genre for score in updates[0].window.scores} == set(LABELS)


async def test_dense_rows_are_counted_from_the_values(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    request = genre_pb2.ClassifyFeaturesRequest(
        dense=genre_pb2.DenseFeatures(feature_names=["a", "b"], values=[0.0] * 2 * 256)
    )
    response = await stub.ClassifyFeatures(request)
    assert len(response.results) == 256
    assert response.ByteSize() == ours(256).ByteSize()


def request_bytes() -> bytes:
    return genre_pb2.ClassifyFeaturesRequest(
        rows=[genre_pb2.FeatureRow(features={"tempo": 1.0})]
    ).SerializeToString()


async def calls_over_connections(target: str, connections: int, calls_each: int) -> int:
    """``calls_each`` calls on each of ``connections`` separate connections; answers received."""
    answered = 0
    for _ in range(connections):
        options = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own
        async with grpc.aio.insecure_channel(target, options=options) as channel:
            call = channel.unary_unary(
                CLASSIFY, request_serializer=None, response_deserializer=None
            )
            for _ in range(calls_each):
                response = genre_pb2.ClassifyFeaturesResponse.FromString(
                    await call(request_bytes())
                )
                answered += len(response.results)
    return answered


async def test_echo_processes_with_reuseport_share_one_port_and_each_serves(
    tmp_path: Path,
) -> None:
    manifest = write_tiny_model(tmp_path / "models") / "manifest.json"
    with echo_servers(manifest, 2) as handles:
        assert handles[0].grpc_port == handles[1].grpc_port
        assert handles[0].process.pid != handles[1].process.pid
        # The kernel deals whole connections: 24 of them all landing on one process has odds
        # of 2 in 2**24.
        answered = await calls_over_connections(handles[0].target, 24, 5)
        served = []
        for handle in handles:
            handle.process.terminate()
            stopped = handle.read_logs_until("stopped", timeout=20)
            assert stopped["pid"] == handle.process.pid
            served.append(int(str(stopped["calls"])))
    assert answered == 24 * 5
    assert sum(served) == answered
    assert all(calls > 0 for calls in served), served


def test_a_second_echo_process_without_reuseport_is_refused_the_port(tmp_path: Path) -> None:
    manifest = write_tiny_model(tmp_path / "models") / "manifest.json"
    command = [sys.executable, "-m", "bench.peers.echo", "--manifest", str(manifest)]
    first = start_server_process(None, command=command)
    try:
        with pytest.raises(AssertionError, match="never logged 'starting'"):
            start_server_process(None, {"GENRE_GRPC_PORT": str(first.grpc_port)}, command=command)
    finally:
        assert first.stop() == 0
