"""The server-wide threshold (``GENRE_MIN_PROBABILITY``): it replaces each model's default for
calls that set none, ``ListModels`` says so, and a call's own threshold still wins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from genre.v1 import genre_pb2, genre_pb2_grpc
from server.app import create_server
from tests.support.checkpoints import FEATURE_NAMES, LABELS
from tests.support.harness import loopback_config

ROW = genre_pb2.FeatureRow(features=dict.fromkeys(FEATURE_NAMES, 0.5))


@pytest.fixture
async def strict(repository: Path) -> AsyncIterator[genre_pb2_grpc.GenreClassifierAsyncStub]:
    """A server whose default threshold no answer of a 3-genre model can always reach."""
    app = await create_server(loopback_config(repository, min_probability=0.99))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            yield genre_pb2_grpc.GenreClassifierStub(channel)
    finally:
        await app.drain(grace=1.0)


async def test_the_server_threshold_applies_and_is_listed(
    strict: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    listed = (await strict.ListModels(genre_pb2.ListModelsRequest())).models
    assert [info.min_probability for info in listed] == pytest.approx([0.99] * len(listed))
    request = genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name="tiny-mlp"), rows=[ROW, ROW]
    )
    answer = await strict.ClassifyFeatures(request)
    assert all(max(s.probability for s in r.scores) < 0.99 for r in answer.results)
    assert [r.abstention for r in answer.results] == [genre_pb2.UNCERTAIN] * 2
    request.min_probability = 1 / len(LABELS)  # the top of 3 genres is never under a third
    answer = await strict.ClassifyFeatures(request)
    assert [r.abstention for r in answer.results] == [genre_pb2.ANSWERED] * 2


async def test_without_one_the_models_own_default_is_listed(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    listed = (await stub.ListModels(genre_pb2.ListModelsRequest())).models
    assert {info.min_probability for info in listed} == {0.0}  # tiny models choose none
    assert not any(info.detects_music for info in listed)
