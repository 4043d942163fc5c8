"""The web port without a browser: the page's files, /api/models, and the WebSocket bridge onto
ClassifyAudioStream (same answers, limits, idle timeout, drain, workers); Origin, tokens and TLS
are in test_web_security.py."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import numpy as np
import pytest
import soundfile
from google.protobuf import json_format

from bench.scrape import metrics_text
from genre.v1 import genre_pb2, genre_pb2_grpc
from server.app import App, create_server
from server.logs import configure_logging
from tests.conftest import REPOSITORY_ROOT
from tests.support.harness import loopback_config, sample_value, start_server_process
from tests.support.web import (
    AUDIO,
    END,
    RATE,
    Frame,
    SocketResult,
    api_url,
    config_frame,
    free_port,
    get_json,
    read_all,
    send_frames,
    started,
    stream_frames,
    web_repository,
    ws_url,
)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    return web_repository(tmp_path / "models")


@pytest.fixture
async def app(repository: Path) -> AsyncIterator[App]:
    running = await started(repository)
    try:
        yield running
    finally:
        await running.drain(grace=1.0)


async def test_the_port_is_off_unless_configured(repository: Path) -> None:
    running = await create_server(loopback_config(repository))
    try:
        assert running.web is None
    finally:
        await running.drain(grace=1.0)


async def test_the_page_and_its_files_come_from_the_package(app: App) -> None:
    assert app.web is not None
    base = f"http://127.0.0.1:{app.web.port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/") as page:
            assert page.status == 200
            assert 'id="track-genre"' in await page.text()
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        for name in ("app.js", "capture.js", "style.css"):
            async with session.get(f"{base}/static/{name}") as asset:
                assert asset.status == 200, name
        async with session.get(base + "/static/../site.py") as escape:
            assert escape.status in (403, 404)


async def test_the_model_list_is_the_list_models_answer(app: App) -> None:
    status, body = await get_json(api_url(app))
    assert status == 200
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        listed = await genre_pb2_grpc.GenreClassifierStub(channel).ListModels(
            genre_pb2.ListModelsRequest()
        )
    assert body == json_format.MessageToDict(
        listed, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    assert {m["model"]["name"] for m in body["models"]} == {"tiny-audio", "tiny-mlp"}


async def grpc_answers(app: App) -> list[genre_pb2.ClassifyAudioStreamResponse]:
    config = genre_pb2.StreamConfig(
        model=genre_pb2.ModelRef(name="tiny-audio"),
        sample_rate=RATE,
        encoding=genre_pb2.PCM_S16LE,
        channels=1,
        top_k=3,
    )
    requests = [genre_pb2.ClassifyAudioStreamRequest(config=config)] + [
        genre_pb2.ClassifyAudioStreamRequest(audio=genre_pb2.AudioChunk(data=chunk))
        for chunk in AUDIO
    ]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        stub = genre_pb2_grpc.GenreClassifierStub(channel)
        return [r async for r in stub.ClassifyAudioStream(iter(requests))]


async def test_a_socket_stream_gets_what_grpc_gets(app: App) -> None:
    result = await stream_frames(
        ws_url(app), [config_frame("tiny-audio", RATE, top_k=3), *AUDIO, END]
    )
    expected = await grpc_answers(app)
    assert result.close_code == 1000
    assert result.outcome["status"] == "OK"
    assert len(result.outcome["request_id"]) == 32
    windows = result.windows
    assert len(windows) == len(expected) == 6  # 1.5 s: windows at 0, 0.25, ..., 1.0, then final
    assert [w["final"] for w in windows] == [False] * 5 + [True]
    for window, answer in zip(windows, expected, strict=True):
        assert window["window_start"] == pytest.approx(answer.window_start_seconds)
        assert window["window_end"] == pytest.approx(answer.window_end_seconds)
        assert [s["genre"] for s in window["track"]] == [s.genre for s in answer.track.scores]
        assert [s["probability"] for s in window["window"]] == pytest.approx(
            [s.probability for s in answer.window.scores], abs=1e-5
        )
        assert window["window_abstention"] == window["track_abstention"] == "answered"
        assert 0 <= window["latency_ms"] < 5000
    metrics = await asyncio.to_thread(metrics_text, app.metrics_port)
    labels = {"method": "ClassifyAudioStream", "protocol": "websocket", "status": "OK"}
    assert sample_value(metrics, "genre_requests_total", labels) == 1


async def test_silence_comes_back_as_the_silence_abstention(app: App) -> None:
    silent = [bytes(len(chunk)) for chunk in AUDIO]
    result = await stream_frames(ws_url(app), [config_frame("tiny-audio", RATE), *silent, END])
    assert result.outcome["status"] == "OK"
    assert {w["window_abstention"] for w in result.windows} == {"silence"}
    assert result.windows[-1]["track_abstention"] == "silence"
    never = config_frame("tiny-audio", RATE, silence_threshold_dbfs=float("-inf"))
    answered = await stream_frames(ws_url(app), [never, *silent, END])  # Python's JSON: -Infinity
    assert answered.outcome["status"] == "OK"
    assert "silence" not in {w["window_abstention"] for w in answered.windows}
    assert len(answered.windows) == len(result.windows)


@pytest.mark.parametrize(
    ("frames", "status", "close_code", "field"),
    [
        ([config_frame("tiny-audio", 100), END], "INVALID_ARGUMENT", 4003, "config.sample_rate"),
        ([config_frame("tiny-audio", "8000"), END], "INVALID_ARGUMENT", 4003, "config.sample_rate"),
        (
            [config_frame("tiny-audio", RATE, tempo=3), END],
            "INVALID_ARGUMENT",
            4003,
            "config.tempo",
        ),
        ([config_frame("no-such", RATE), END], "NOT_FOUND", 4005, "model.name"),
        ([config_frame("tiny-mlp", RATE), END], "INVALID_ARGUMENT", 4003, "config.model.name"),
        ([b"\x00\x01", END], "FAILED_PRECONDITION", 4009, "config: the first message"),
        (
            [config_frame("tiny-audio", RATE), config_frame("tiny-audio", RATE)],
            "FAILED_PRECONDITION",
            4009,
            "exactly one config",
        ),
        (
            [config_frame("tiny-audio", RATE), bytes(20_000)],
            "RESOURCE_EXHAUSTED",
            4008,
            "audio.data",
        ),
        (["not json"], "INVALID_ARGUMENT", 4003, "JSON object"),
    ],
)
async def test_bad_input_gets_the_status_and_message_grpc_would_give(
    app: App, frames: list[object], status: str, close_code: int, field: str
) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(app)) as socket:
        for frame in frames:
            if isinstance(frame, str):
                await socket.send_str(frame)
            else:
                await send_frames(socket, [frame])  # type: ignore[list-item]
        result = await read_all(socket)
    assert result.outcome["type"] == "error"
    assert result.outcome["status"] == status
    assert field in result.outcome["message"]
    assert result.close_code == close_code


async def test_a_silent_socket_is_closed_after_the_idle_timeout(app: App) -> None:
    started_at = asyncio.get_running_loop().time()
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(app)) as socket:
        await send_frames(socket, [config_frame("tiny-audio", RATE)])
        result = await read_all(socket)
    assert result.outcome["status"] == "DEADLINE_EXCEEDED"
    assert "no message for 1 s" in result.outcome["message"]
    assert 0.9 < asyncio.get_running_loop().time() - started_at < 5


async def test_sockets_share_the_stream_limit_and_a_closed_one_frees_its_slot(app: App) -> None:
    log = io.StringIO()
    configure_logging("json", "info", stream=log)
    async with aiohttp.ClientSession() as session:
        first = await session.ws_connect(ws_url(app))
        second = await session.ws_connect(ws_url(app))
        for socket in (first, second):
            await send_frames(socket, [config_frame("tiny-audio", RATE), AUDIO[0]])
        refused = await stream_frames(ws_url(app), [config_frame("tiny-audio", RATE), END])
        assert refused.outcome["status"] == "RESOURCE_EXHAUSTED"
        assert "2 streams are open (limit 2)" in refused.outcome["message"]
        await first.close()  # a browser tab closed mid-stream
        for _ in range(50):
            accepted = await stream_frames(
                ws_url(app), [config_frame("tiny-audio", RATE), *AUDIO, END]
            )
            if accepted.outcome["status"] == "OK":
                break
            await asyncio.sleep(0.05)
        assert accepted.outcome["status"] == "OK"
        await second.close()
    for _ in range(50):
        lines = [json.loads(line) for line in log.getvalue().splitlines()]
        statuses = [line["status"] for line in lines if line["event"] == "request"]
        if statuses.count("CANCELLED") == 2:
            break
        await asyncio.sleep(0.05)
    assert statuses.count("CANCELLED") == 2  # the tabs closed mid-stream, as a gRPC cancel
    assert not [line for line in lines if line["event"] == "unhandled_error"]


async def test_draining_ends_an_open_socket_with_its_final_answer(app: App) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(app)) as socket:
        await send_frames(socket, [config_frame("tiny-audio", RATE), *AUDIO])
        first = json.loads((await socket.receive()).data)
        assert first["type"] == "window"
        drain = asyncio.create_task(app.drain(grace=2.0))
        result = await read_all(socket)
        await drain
    assert result.windows[-1]["final"]
    assert result.outcome["status"] == "OK"
    assert result.close_code == 1000


def test_every_worker_serves_the_page_on_the_shared_port(repository: Path) -> None:
    port = free_port()
    env = {"GENRE_WORKERS": "2", "GENRE_TORCH_THREADS": "1", "GENRE_HTTP_PORT": str(port),
           "GENRE_HTTP_HOST": "127.0.0.1"}  # fmt: skip
    server = start_server_process(repository, env)
    try:
        frames: list[Frame] = [config_frame("tiny-audio", RATE), *AUDIO, END]
        url = f"http://127.0.0.1:{port}/ws"
        results = asyncio.run(gather_streams(url, frames, 8))
        assert [r.outcome["status"] for r in results] == ["OK"] * 8
    finally:
        assert server.stop() == 0
    streams = [
        record
        for record in server.records()
        if record.get("event") == "request" and record.get("protocol") == "websocket"
    ]
    assert len(streams) == 8  # one log line per stream, written by whichever worker took it
    assert {record["worker"] for record in streams} <= {0, 1}


async def gather_streams(url: str, frames: list[Frame], count: int) -> list[SocketResult]:
    return list(await asyncio.gather(*(stream_frames(url, frames) for _ in range(count))))


@pytest.mark.shared_data
async def test_a_real_classical_track_is_classical_over_the_socket(data_dir: Path) -> None:
    audio, rate = soundfile.read(
        data_dir / "gtzan" / "audio" / "classical" / "classical.00004.ogg", dtype="float32"
    )
    chunks = [
        audio[i : i + rate // 4].astype("<f4").tobytes() for i in range(0, rate * 12, rate // 4)
    ]
    app = await started(
        REPOSITORY_ROOT / "models",
        models=("gtzan-cnn-lstm",),
        stream_idle_timeout_seconds=30.0,
        max_chunk_bytes=1024 * 1024,
    )
    try:
        frame = config_frame("gtzan-cnn-lstm", rate, encoding="PCM_F32LE", top_k=3)
        result = await stream_frames(ws_url(app), [frame, *chunks, END])
    finally:
        await app.drain(grace=1.0)
    assert result.outcome["status"] == "OK"
    assert len(result.windows) == 8  # 12 s, 3-s windows every 1.5 s: 7, then the final
    final = result.windows[-1]
    assert final["final"]
    assert final["track"][0]["genre"] == "classical"
    assert final["track"][0]["probability"] > 0.9
    assert np.mean([w["window"][0]["genre"] == "classical" for w in result.windows]) > 0.8
