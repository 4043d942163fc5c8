"""The asyncio client: the same behaviour as the blocking one, awaited."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest

from client import AsyncGenreClient, GenreClientError
from genre.v1 import genre_pb2
from tests.client.conftest import FAST_RETRY
from tests.client.scripted import LABELS, ScriptedServicer, expected_scores


@pytest.fixture
async def aclient(grpc_addr: str, servicer: ScriptedServicer) -> AsyncIterator[AsyncGenreClient]:
    async with AsyncGenreClient(grpc_addr, retry=FAST_RETRY, deadline_seconds=5.0) as genre:
        yield genre


async def test_retries_unavailable_until_an_answer(
    aclient: AsyncGenreClient, servicer: ScriptedServicer
) -> None:
    servicer.fail("ClassifyFeatures", grpc.StatusCode.UNAVAILABLE, "restarting", times=2)

    result = await aclient.classify_features("gtzan-mlp", [{"tempo": 3.0}])

    assert servicer.calls["ClassifyFeatures"] == 3
    assert result.top() == [LABELS[3]]


async def test_never_retries_invalid_argument(
    aclient: AsyncGenreClient, servicer: ScriptedServicer
) -> None:
    servicer.fail("ListModels", grpc.StatusCode.INVALID_ARGUMENT, "bad")

    with pytest.raises(GenreClientError) as raised:
        await aclient.list_models()

    assert servicer.calls["ListModels"] == 1
    assert (raised.value.code, raised.value.details) == (grpc.StatusCode.INVALID_ARGUMENT, "bad")


async def test_gives_up_after_max_attempts(
    aclient: AsyncGenreClient, servicer: ScriptedServicer
) -> None:
    servicer.fail("ListModels", grpc.StatusCode.UNAVAILABLE, "down", times=10)

    with pytest.raises(GenreClientError) as raised:
        await aclient.list_models()

    assert servicer.calls["ListModels"] == FAST_RETRY.max_attempts
    assert raised.value.attempts == FAST_RETRY.max_attempts


async def test_sends_deadlines(aclient: AsyncGenreClient, servicer: ScriptedServicer) -> None:
    await aclient.list_models()
    await aclient.list_models(timeout=1.0)

    default, override = servicer.time_remaining
    assert default is not None
    assert 4.0 < default <= 5.05
    assert override is not None
    assert 0.5 < override <= 1.05


async def test_dense_round_trips_and_answers_are_sorted(
    aclient: AsyncGenreClient, servicer: ScriptedServicer
) -> None:
    values = np.arange(12, dtype=np.float32).reshape(4, 3) / 7

    result = await aclient.classify_dense("gtzan-mlp", ["a", "b", "c"], values)

    (request,) = servicer.feature_requests
    sent = np.asarray(request.dense.values, dtype=np.float32).reshape(values.shape)
    np.testing.assert_array_equal(sent, values)
    assert result.predictions == [expected_scores(row.tolist()) for row in values]


async def test_streams_config_then_chunks_from_an_async_source(
    aclient: AsyncGenreClient, servicer: ScriptedServicer
) -> None:
    chunks = [bytes([n]) * (n + 1) for n in range(5)]

    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    updates = [u async for u in aclient.stream_audio("gtzan-cnn", source(), sample_rate=22050)]

    config, *audio = servicer.stream_requests
    assert config.config.encoding == genre_pb2.PCM_S16LE
    assert config.config.sample_rate == 22050
    assert [r.audio.data for r in audio] == chunks
    assert [u.final for u in updates] == [False] * 5 + [True]


async def test_stream_reraises_the_chunk_sources_own_error(aclient: AsyncGenreClient) -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"\x00" * 4
        raise OSError("microphone unplugged")

    with pytest.raises(OSError, match="microphone unplugged"):
        async for _ in aclient.stream_audio("gtzan-cnn", source(), sample_rate=8000):
            pass


async def test_stream_error_status_surfaces_as_client_error(
    aclient: AsyncGenreClient, servicer: ScriptedServicer
) -> None:
    servicer.fail("ClassifyAudioStream", grpc.StatusCode.NOT_FOUND, "no model 'x'")

    with pytest.raises(GenreClientError) as raised:
        async for _ in aclient.stream_audio("x", [b"\x00\x00"], sample_rate=8000):
            pass

    assert raised.value.code is grpc.StatusCode.NOT_FOUND
    assert servicer.calls["ClassifyAudioStream"] == 1
