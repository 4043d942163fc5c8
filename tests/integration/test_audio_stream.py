"""ClassifyAudioStream against a real server with a small audio model, on synthesised audio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import numpy as np
import pytest

from genre.v1 import genre_pb2, genre_pb2_grpc
from server.app import App, create_server
from tests.support.checkpoints import (
    AUDIO_LABELS,
    TINY_FRONTEND,
    write_tiny_audio_model,
    write_tiny_model,
)
from tests.support.harness import loopback_config, sample_value, scrape
from tests.support.synthetic_audio import pcm_s16le, synth_clip

RATE = TINY_FRONTEND.sample_rate
Request = genre_pb2.ClassifyAudioStreamRequest
Response = genre_pb2.ClassifyAudioStreamResponse


def config(
    name: str = "tiny-audio",
    sample_rate: int = RATE,
    encoding: genre_pb2.AudioEncoding.ValueType = genre_pb2.PCM_S16LE,
    channels: int = 1,
    hop_seconds: float = 0.0,
    top_k: int = 0,
) -> Request:
    return Request(
        config=genre_pb2.StreamConfig(
            model=genre_pb2.ModelRef(name=name),
            sample_rate=sample_rate,
            encoding=encoding,
            channels=channels,
            hop_seconds=hop_seconds,
            top_k=top_k,
        )
    )


def chunks(data: bytes, size: int) -> list[Request]:
    return [
        Request(audio=genre_pb2.AudioChunk(data=data[i : i + size]))
        for i in range(0, len(data), size)
    ]


async def messages(items: Sequence[Request]) -> AsyncIterator[Request]:
    for item in items:
        yield item


async def stream(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub, items: Sequence[Request]
) -> list[Response]:
    return [response async for response in stub.ClassifyAudioStream(messages(items))]


def scores(classification: genre_pb2.Classification) -> list[float]:
    by_genre = {s.genre: s.probability for s in classification.scores}
    return [by_genre[label] for label in AUDIO_LABELS]


def sync_stream_status(target: str, items: Sequence[Request]) -> tuple[grpc.StatusCode, str]:
    """Runs a stream on the blocking client and returns how it ended.

    Error statuses are read with the blocking client: grpc.aio's client can report
    'INTERNAL: Internal error from Core' instead of the server's status when the server ends a
    stream while the client is still sending (grpc/grpc#36066); the blocking client reports the
    status the server sent, which is what these tests are about.
    """
    with grpc.insecure_channel(target) as channel:
        call = genre_pb2_grpc.GenreClassifierStub(channel).ClassifyAudioStream(iter(items))
        try:
            for _ in call:
                pass
        except grpc.RpcError as error:
            return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


async def expect_status(
    app: App, items: Sequence[Request], code: grpc.StatusCode, field: str
) -> None:
    target = f"127.0.0.1:{app.grpc_port}"
    status, details = await asyncio.to_thread(sync_stream_status, target, items)
    assert status == code, details
    assert field in details


@pytest.fixture
def audio_repository(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write_tiny_audio_model(root)
    write_tiny_model(root, "tiny-mlp")
    return root


@pytest.fixture
async def audio_app(audio_repository: Path) -> AsyncIterator[App]:
    app = await create_server(
        loopback_config(
            audio_repository,
            max_chunk_bytes=64 * 1024,
            max_stream_seconds=20.0,
            stream_idle_timeout_seconds=2.0,
            max_streams=8,
        )
    )
    try:
        yield app
    finally:
        await app.drain(grace=1.0)


@pytest.fixture
async def audio_stub(
    audio_app: App,
) -> AsyncIterator[genre_pb2_grpc.GenreClassifierAsyncStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{audio_app.grpc_port}") as channel:
        yield genre_pb2_grpc.GenreClassifierStub(channel)


CLIP = synth_clip("disco", 2.0, RATE, seed=3)


async def test_one_response_per_hop_then_a_final_track_answer(
    audio_stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    responses = await stream(audio_stub, [config(), *chunks(pcm_s16le(CLIP), 1600)])
    *windows, final = responses
    # 2.0 s of audio, 0.5 s windows every 0.25 s: windows start at 0, 0.25, ..., 1.5
    assert [r.window_start_seconds for r in windows] == pytest.approx([0.25 * i for i in range(7)])
    assert [r.window_end_seconds - r.window_start_seconds for r in windows] == pytest.approx(
        [0.5] * 7
    )
    assert not any(r.final for r in windows)
    assert final.final
    assert not final.padded
    assert final.audio_seconds == pytest.approx(2.0)
    assert final.model.name == "tiny-audio"
    assert final.model.version == "1"
    window_scores = np.array([scores(r.window) for r in windows])
    np.testing.assert_allclose(scores(final.track), window_scores.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(scores(windows[2].track), window_scores[:3].mean(axis=0), atol=1e-5)
    assert all(sum(scores(r.window)) == pytest.approx(1.0, abs=1e-5) for r in windows)


async def test_chunking_does_not_change_predictions(
    audio_stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    audio = pcm_s16le(CLIP[: int(0.8 * RATE)])
    results = []
    for size in (1, 777, len(audio)):  # 1-byte chunks split every sample in half
        responses = await stream(audio_stub, [config(), *chunks(audio, size)])
        results.append([scores(r.window) for r in responses])
    assert len(results[0]) == 3  # windows at 0 and 0.25 s, then the final
    np.testing.assert_allclose(results[0], results[1], atol=1e-5)
    np.testing.assert_allclose(results[0], results[2], atol=1e-5)


async def test_stereo_float_audio_at_another_rate_is_downmixed_and_resampled(
    audio_stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    rate = 16000
    mono = synth_clip("metal", 1.0, rate, seed=5)
    stereo = np.stack([mono, mono], axis=1).astype("<f4").tobytes()
    items = [
        config(sample_rate=rate, encoding=genre_pb2.PCM_F32LE, channels=2),
        *chunks(stereo, 4000),
    ]
    responses = await stream(audio_stub, items)
    assert len(responses) == 3 + 1
    assert responses[-1].audio_seconds == pytest.approx(1.0)
    assert [r.window_start_seconds for r in responses[:3]] == pytest.approx([0.0, 0.25, 0.5])


async def test_audio_shorter_than_a_window_gets_a_padded_final(
    audio_stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    short = pcm_s16le(CLIP[: int(0.2 * RATE)])
    [final] = await stream(audio_stub, [config(top_k=2), *chunks(short, 1000)])
    assert final.final
    assert final.padded
    assert final.audio_seconds == pytest.approx(0.2)
    assert len(final.window.scores) == 2
    assert [s.genre for s in final.track.scores] == [s.genre for s in final.window.scores]


AUDIO = chunks(pcm_s16le(CLIP[:RATE]), 1600)

LIMIT_CASES = [
    pytest.param(AUDIO, grpc.StatusCode.FAILED_PRECONDITION, "config", id="audio-before-config"),
    pytest.param([config(), config()], grpc.StatusCode.FAILED_PRECONDITION, "config",
                 id="second-config"),
    pytest.param([config(sample_rate=7000)], grpc.StatusCode.INVALID_ARGUMENT,
                 "config.sample_rate", id="rate-too-low"),
    pytest.param([config(sample_rate=96000)], grpc.StatusCode.INVALID_ARGUMENT,
                 "config.sample_rate", id="rate-too-high"),
    pytest.param([config(encoding=genre_pb2.AUDIO_ENCODING_UNSPECIFIED)],
                 grpc.StatusCode.INVALID_ARGUMENT, "config.encoding", id="no-encoding"),
    pytest.param([config(channels=3)], grpc.StatusCode.INVALID_ARGUMENT, "config.channels",
                 id="three-channels"),
    pytest.param([config(hop_seconds=0.01)], grpc.StatusCode.INVALID_ARGUMENT,
                 "config.hop_seconds", id="hop-too-small"),
    pytest.param([config(hop_seconds=2.0)], grpc.StatusCode.INVALID_ARGUMENT,
                 "config.hop_seconds", id="hop-beyond-window"),
    pytest.param([config(name="tiny-mlp")], grpc.StatusCode.INVALID_ARGUMENT,
                 "config.model.name", id="features-model"),
    pytest.param([config(name="absent")], grpc.StatusCode.NOT_FOUND, "model.name",
                 id="unknown-model"),
    pytest.param([config()], grpc.StatusCode.INVALID_ARGUMENT, "audio: the stream ended",
                 id="no-audio"),
    pytest.param([config(), Request(audio=genre_pb2.AudioChunk(data=bytes(64 * 1024 + 2)))],
                 grpc.StatusCode.RESOURCE_EXHAUSTED, "audio.data", id="chunk-too-large"),
    pytest.param([config(), *chunks(bytes(2 * RATE * 21), 60000)],
                 grpc.StatusCode.RESOURCE_EXHAUSTED, "exceeds 20 s", id="stream-too-long"),
    pytest.param([config(encoding=genre_pb2.PCM_F32LE),
                  Request(audio=genre_pb2.AudioChunk(data=np.full(8, np.nan, "<f4").tobytes()))],
                 grpc.StatusCode.INVALID_ARGUMENT, "audio.data", id="nan-samples"),
    pytest.param([config(), Request()], grpc.StatusCode.INVALID_ARGUMENT, "payload",
                 id="empty-message"),
]  # fmt: skip


@pytest.mark.parametrize(("items", "code", "field"), LIMIT_CASES)
async def test_every_limit_has_its_status(
    audio_app: App,
    audio_stub: genre_pb2_grpc.GenreClassifierAsyncStub,
    items: Sequence[Request],
    code: grpc.StatusCode,
    field: str,
) -> None:
    await expect_status(audio_app, items, code, field)
    assert len(await stream(audio_stub, [config(), *AUDIO])) == 3 + 1  # others still served


async def held_open(items: Sequence[Request], release: asyncio.Event) -> AsyncIterator[Request]:
    for item in items:
        yield item
    await release.wait()


async def test_an_idle_stream_is_closed(
    audio_stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    release = asyncio.Event()
    call = audio_stub.ClassifyAudioStream(held_open([config(), *AUDIO[:2]], release))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    release.set()
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "no message for 2 s" in (caught.value.details() or "")


async def test_too_many_streams_and_cancellation_frees_everything(
    audio_app: App, audio_stub: genre_pb2_grpc.GenreClassifierAsyncStub
) -> None:
    release = asyncio.Event()
    calls = [
        audio_stub.ClassifyAudioStream(held_open([config(), *AUDIO[:6]], release))
        for _ in range(audio_app.config.max_streams)
    ]
    for call in calls:  # every stream has answered its first window: all eight are open
        await call.read()
    assert sample_value(scrape(audio_app.metrics_port), "genre_open_streams") == 8
    await expect_status(
        audio_app, [config(), *AUDIO], grpc.StatusCode.RESOURCE_EXHAUSTED, "streams are open"
    )
    for call in calls:
        call.cancel()
    release.set()
    deadline = asyncio.get_running_loop().time() + 5
    while sample_value(scrape(audio_app.metrics_port), "genre_open_streams") > 0:
        assert asyncio.get_running_loop().time() < deadline, "cancelled streams stayed open"
        await asyncio.sleep(0.02)
    text = scrape(audio_app.metrics_port)
    assert sample_value(text, "genre_queue_rows", {"model": "tiny-audio"}) == 0
    assert audio_app.state.active_calls == 0
    assert len(await stream(audio_stub, [config(), *AUDIO])) == 3 + 1


async def test_concurrent_streams_share_forward_passes(
    audio_app: App, audio_stub: genre_pb2_grpc.GenreClassifierAsyncStub
) -> None:
    items = [config(), *chunks(pcm_s16le(CLIP), 4000)]
    results = await asyncio.gather(*(stream(audio_stub, items) for _ in range(8)))
    assert all(len(responses) == 7 + 1 for responses in results)
    text = scrape(audio_app.metrics_port)
    audio = {"model": "tiny-audio"}
    rows = sample_value(text, "genre_inferred_rows_total", audio)
    executions = sample_value(text, "genre_batch_executions_total", audio)
    assert rows == 8 * 7
    assert rows / executions > 1.5, f"{rows} windows took {executions} forward passes"
    assert sample_value(text, "genre_audio_received_seconds_total", audio) == pytest.approx(16.0)
    assert sample_value(text, "genre_window_latency_seconds_count", audio) == 8 * 7
    assert sample_value(text, "genre_stream_real_time_factor_count", audio) == 8


async def test_draining_ends_open_streams_with_a_final_response(
    audio_app: App, audio_stub: genre_pb2_grpc.GenreClassifierAsyncStub
) -> None:
    release = asyncio.Event()
    call = audio_stub.ClassifyAudioStream(held_open([config(), *AUDIO[:6]], release))
    first = await call.read()
    assert isinstance(first, Response)
    assert not first.final
    drained = asyncio.ensure_future(audio_app.drain(grace=5.0))
    rest = []
    while (response := await call.read()) is not grpc.aio.EOF:  # type: ignore[attr-defined]
        assert isinstance(response, Response)
        rest.append(response)
    release.set()
    assert rest[-1].final
    assert await call.code() == grpc.StatusCode.OK
    await drained


async def test_list_models_describes_the_audio_front_end(
    audio_stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    listing = await audio_stub.ListModels(genre_pb2.ListModelsRequest())
    [audio] = [m for m in listing.models if m.model.name == "tiny-audio"]
    assert audio.kind == genre_pb2.AUDIO
    assert audio.audio.sample_rate == RATE
    assert audio.audio.window_seconds == pytest.approx(0.5)
    assert audio.audio.default_hop_seconds == pytest.approx(0.25)
    assert audio.audio.n_mels == TINY_FRONTEND.n_mels
