"""A server whose event loop is late refuses new streams with RESOURCE_EXHAUSTED, keeps the
admitted one going, and admits again once it has caught up (``GENRE_STREAM_LATENCY_BOUND_MS``).

The server runs in the test's own event loop, so blocking that loop is a real saturation: the
server's lag sampler sees it as the loop of a process with more work than it can do would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from genre.v1 import genre_pb2_grpc
from tests.support.harness import sample_value, scrape
from tests.support.streams import OpenStream, tiny_audio_server

BOUND_MS = 80.0


@pytest.fixture
async def stub(
    tmp_path: Path,
) -> AsyncIterator[tuple[genre_pb2_grpc.GenreClassifierAsyncStub, int]]:
    async with tiny_audio_server(
        tmp_path, stream_latency_bound_ms=BOUND_MS, stream_admission_load=0.0
    ) as served:
        yield served


async def saturate(seconds: float) -> None:
    """Holds the loop in 0.3-s blocks with a moment between: every lag sample comes back late."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        time.sleep(0.3)  # noqa: ASYNC251 - blocking the loop is the point
        await asyncio.sleep(0.001)


async def test_a_late_server_refuses_new_streams_then_admits_again(
    stub: tuple[genre_pb2_grpc.GenreClassifierAsyncStub, int],
) -> None:
    client, metrics_port = stub
    admitted = OpenStream(client, hop_seconds=0.25)
    assert (await admitted.next_answer()).HasField("window")

    await saturate(1.5)
    assert sample_value(scrape(metrics_port), "genre_event_loop_lag_seconds") > BOUND_MS / 1000
    refused = OpenStream(client, hop_seconds=0.25)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await refused.next_answer()
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "config: streams on this server are already late" in (error.value.details() or "")
    assert "GENRE_STREAM_LATENCY_BOUND_MS=80" in (error.value.details() or "")

    admitted.send_clip()  # the admitted stream goes on
    assert (await admitted.next_answer()).HasField("window")

    await asyncio.sleep(2.5)  # the late samples leave the 2-s horizon
    again = OpenStream(client, hop_seconds=0.25)
    assert (await again.next_answer()).HasField("window")
    assert (await again.finish())[-1].final
    assert (await admitted.finish())[-1].final
