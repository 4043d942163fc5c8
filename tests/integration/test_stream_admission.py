"""Streams are admitted by capacity: past the share of the audio models' measured windows/s that
``stream_admission_load`` allows, a new stream gets RESOURCE_EXHAUSTED at its config, and the
admitted ones keep going."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from genre.v1 import genre_pb2_grpc
from tests.support.harness import sample_value, scrape
from tests.support.streams import OpenStream, tiny_audio_server


@pytest.fixture
async def stub(
    tmp_path: Path,
) -> AsyncIterator[tuple[genre_pb2_grpc.GenreClassifierAsyncStub, int]]:
    # A capacity of 10 windows/s and a load limit of 0.5: a stream at hop 0.25 s asks for 0.4,
    # one at hop 0.5 s for 0.2.
    async with tiny_audio_server(
        tmp_path, audio_windows_per_second=10.0, stream_admission_load=0.5
    ) as served:
        yield served


async def test_a_stream_past_capacity_is_refused_and_admitted_once_room_is_made(
    stub: tuple[genre_pb2_grpc.GenreClassifierAsyncStub, int],
) -> None:
    client, metrics_port = stub
    first = OpenStream(client, hop_seconds=0.25)
    assert (await first.next_answer()).HasField("window")
    assert sample_value(scrape(metrics_port), "genre_stream_load") == pytest.approx(0.4)

    second = OpenStream(client, hop_seconds=0.25)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await second.next_answer()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = refused.value.details() or ""
    assert "config.hop_seconds: the audio models are at capacity" in details
    assert "GENRE_STREAM_ADMISSION_LOAD" in details

    # the admitted stream is unaffected and finishes normally
    responses = await first.finish()
    assert responses
    assert responses[-1].HasField("track")
    assert sample_value(scrape(metrics_port), "genre_stream_load") == pytest.approx(0.0)

    # room again: the next stream is admitted
    third = OpenStream(client, hop_seconds=0.25)
    assert (await third.next_answer()).HasField("window")
    assert await third.finish()


async def test_a_longer_hop_asks_for_less_so_more_streams_fit(
    stub: tuple[genre_pb2_grpc.GenreClassifierAsyncStub, int],
) -> None:
    client, metrics_port = stub
    admitted = [OpenStream(client, hop_seconds=0.5) for _ in range(2)]
    for stream in admitted:
        assert (await stream.next_answer()).HasField("window")
    assert sample_value(scrape(metrics_port), "genre_stream_load") == pytest.approx(0.4)
    third = OpenStream(client, hop_seconds=0.5)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await third.next_answer()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    for stream in admitted:
        assert await stream.finish()
