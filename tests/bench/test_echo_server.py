"""The echo ceiling answers every ClassifyFeatures call with a response the size of ours."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest

from bench.echo_server import EchoServicer
from genre.v1 import genre_pb2, genre_pb2_grpc
from server.features import ranked
from server.handlers import add_servicer

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


async def test_dense_rows_are_counted_from_the_values(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    request = genre_pb2.ClassifyFeaturesRequest(
        dense=genre_pb2.DenseFeatures(feature_names=["a", "b"], values=[0.0] * 2 * 256)
    )
    response = await stub.ClassifyFeatures(request)
    assert len(response.results) == 256
    assert response.ByteSize() == ours(256).ByteSize()
