"""The dynamic batcher on a real server: merging, deadlines, bounded queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from genre.v1 import genre_pb2, genre_pb2_grpc
from server.app import App, create_server
from server.registry import local_batcher
from tests.support.checkpoints import example_row
from tests.support.harness import loopback_config, prime_concurrency, sample_value, scrape

MODEL = {"model": "tiny-mlp", "version": "2"}


def assert_same_scores(a: genre_pb2.Classification, b: genre_pb2.Classification) -> None:
    """Equal up to float32 rounding: batched matmuls may sum in another order than single ones."""
    assert {s.genre: s.probability for s in a.scores} == pytest.approx(
        {s.genre: s.probability for s in b.scores}, abs=1e-6
    )


def request(*rows: dict[str, float]) -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name="tiny-mlp"),
        rows=[genre_pb2.FeatureRow(features=row) for row in rows],
    )


async def started(
    repository: Path, **overrides: object
) -> AsyncIterator[tuple[App, genre_pb2_grpc.GenreClassifierAsyncStub]]:
    app = await create_server(loopback_config(repository, **overrides))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            yield app, genre_pb2_grpc.GenreClassifierStub(channel)
    finally:
        await app.drain(grace=1.0)


@pytest.fixture
async def slow_batching(
    repository: Path,
) -> AsyncIterator[tuple[App, genre_pb2_grpc.GenreClassifierAsyncStub]]:
    """A long queue delay, so concurrent callers certainly meet in one batch."""
    async for pair in started(repository, max_queue_delay_ms=200.0, max_batch_size=64):
        yield pair


async def test_concurrent_callers_share_forward_passes(
    slow_batching: tuple[App, genre_pb2_grpc.GenreClassifierAsyncStub],
) -> None:
    app, stub = slow_batching
    callers = 16
    rows = [example_row(tempo=60.0 + 10 * i) for i in range(callers)]
    alone = [(await stub.ClassifyFeatures(request(row))).results[0] for row in rows[:2]]
    # The batcher waits for company only once it has seen callers together (its recent peak),
    # so one concurrent burst first: the measured burst is what steady concurrent traffic gets,
    # whatever the machine's load does to the arrival of the first burst.
    await asyncio.gather(*(stub.ClassifyFeatures(request(row)) for row in rows))
    before = scrape(app.metrics_port)
    replies = await asyncio.gather(*(stub.ClassifyFeatures(request(row)) for row in rows))
    after = scrape(app.metrics_port)
    executions = sample_value(after, "genre_batch_executions_total", MODEL) - sample_value(
        before, "genre_batch_executions_total", MODEL
    )
    inferred = sample_value(after, "genre_inferred_rows_total", MODEL) - sample_value(
        before, "genre_inferred_rows_total", MODEL
    )
    assert inferred == callers
    assert executions < callers / 2, f"{callers} callers took {executions} forward passes"
    # each caller got its own row's answer back, in order
    for reply, expected in zip(replies[:2], alone, strict=True):
        assert_same_scores(reply.results[0], expected)


async def test_rows_of_one_call_come_back_in_order(
    slow_batching: tuple[App, genre_pb2_grpc.GenreClassifierAsyncStub],
) -> None:
    _, stub = slow_batching
    rows = [example_row(tempo=50.0 + 5 * i, energy=i / 20) for i in range(20)]
    singles = await asyncio.gather(*(stub.ClassifyFeatures(request(row)) for row in rows))
    together = await stub.ClassifyFeatures(request(*rows))
    assert len(together.results) == len(rows)
    for batched, single in zip(together.results, singles, strict=True):
        assert_same_scores(batched, single.results[0])


async def test_expired_work_never_reaches_the_model(
    slow_batching: tuple[App, genre_pb2_grpc.GenreClassifierAsyncStub],
) -> None:
    app, stub = slow_batching
    await prime_concurrency(stub, "tiny-mlp", example_row(), 8)
    before = scrape(app.metrics_port)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ClassifyFeatures(request(example_row()), timeout=0.05)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.sleep(0.4)  # past the queue delay, when the batch would have run
    after = scrape(app.metrics_port)
    for name in ("genre_inferred_rows_total", "genre_batch_executions_total"):
        assert sample_value(after, name, MODEL) == sample_value(before, name, MODEL)


async def test_a_full_queue_fails_fast_with_resource_exhausted(repository: Path) -> None:
    async for app, stub in started(
        repository, max_queue_delay_ms=1500.0, max_batch_size=64, max_queue_rows=64
    ):
        await prime_concurrency(stub, "tiny-mlp", example_row(), 8)
        waiting = asyncio.ensure_future(stub.ClassifyFeatures(request(*[example_row()] * 40)))
        batcher = local_batcher(app.registry.resolve("tiny-mlp", ""))
        while batcher.queued_rows < 40:
            await asyncio.sleep(0.01)
        started_at = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ClassifyFeatures(request(*[example_row()] * 30))
        assert time.monotonic() - started_at < 1.0  # rejected at once, not after the delay
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "rows queued" in (caught.value.details() or "")
        assert len((await waiting).results) == 40  # the queued call is still served
        text = scrape(app.metrics_port)
        assert (
            sample_value(text, "genre_requests_total", {"status": "RESOURCE_EXHAUSTED", **MODEL})
            == 1
        )
