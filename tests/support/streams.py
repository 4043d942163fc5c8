"""An audio stream a test holds open: config and a first window sent, more audio on demand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc

from genre.v1 import genre_pb2, genre_pb2_grpc
from server.app import create_server
from tests.support.checkpoints import (
    AUDIO_LABELS,
    TINY_FRONTEND,
    tiny_stream_config,
    write_tiny_audio_model,
)
from tests.support.harness import loopback_config
from tests.support.synthetic_audio import FloatArray, pcm_s16le, synth_clip

Request = genre_pb2.ClassifyAudioStreamRequest
Response = genre_pb2.ClassifyAudioStreamResponse
CLIP = pcm_s16le(synth_clip("metal", 0.6, TINY_FRONTEND.sample_rate, seed=3))


class OpenStream:
    """A ``tiny-audio`` stream that sent its config and one window's audio (``CLIP``); it sends
    another clip on ``send_clip()`` and half-closes on ``finish()``."""

    def __init__(self, stub: genre_pb2_grpc.GenreClassifierAsyncStub, hop_seconds: float) -> None:
        self._outgoing: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._outgoing.put_nowait(CLIP)

        async def requests() -> AsyncIterator[Request]:
            yield tiny_stream_config(hop_seconds)
            while (data := await self._outgoing.get()) is not None:
                yield Request(audio=genre_pb2.AudioChunk(data=data))

        self.call = stub.ClassifyAudioStream(requests())

    def send_clip(self) -> None:
        self._outgoing.put_nowait(CLIP)

    async def next_answer(self) -> Response:
        answer = await self.call.read()
        assert isinstance(answer, Response), answer
        return answer

    async def finish(self) -> list[Response]:
        """Half-closes and reads the rest, the final track answer last."""
        self._outgoing.put_nowait(None)
        rest = []
        while isinstance(answer := await self.call.read(), Response):
            rest.append(answer)
        return rest


@contextlib.asynccontextmanager
async def tiny_audio_server(
    directory: Path, **overrides: object
) -> AsyncIterator[tuple[genre_pb2_grpc.GenreClassifierAsyncStub, int]]:
    """An in-process server of ``tiny-audio`` with ``overrides`` to its loopback config: its
    stub over one channel and its metrics port; drained on exit."""
    repository = directory / "models"
    write_tiny_audio_model(repository)
    app = await create_server(loopback_config(repository, **overrides))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            yield genre_pb2_grpc.GenreClassifierStub(channel), app.metrics_port
    finally:
        await app.drain(grace=1.0)


def float_clip_requests(clip: FloatArray) -> list[Request]:
    """A whole ``tiny-audio`` stream of float samples: its config (PCM_F32LE), then one chunk."""
    config = tiny_stream_config()
    config.config.encoding = genre_pb2.PCM_F32LE
    return [config, Request(audio=genre_pb2.AudioChunk(data=clip.astype("<f4").tobytes()))]


def in_label_order(
    classification: genre_pb2.Classification, labels: Sequence[str] = AUDIO_LABELS
) -> list[float]:
    """A ranked Classification's probabilities in ``labels`` order."""
    by_genre = {score.genre: score.probability for score in classification.scores}
    return [by_genre[genre] for genre in labels]
