"""Talking to the web port (``server.web``) the way a page or a script does, over loopback."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from server.app import App, create_server
from tests.support.checkpoints import TINY_FRONTEND, write_tiny_audio_model, write_tiny_model
from tests.support.harness import loopback_config
from tests.support.synthetic_audio import pcm_s16le, synth_clip

Frame = Mapping[str, Any] | bytes  # a JSON text frame or a binary frame of PCM
RATE = TINY_FRONTEND.sample_rate
CLIP = pcm_s16le(synth_clip("disco", 1.5, RATE, seed=4))
AUDIO: list[bytes] = [CLIP[i : i + 1600] for i in range(0, len(CLIP), 1600)]  # 0.1-s frames


def free_port() -> int:
    """A loopback port free a moment ago: GENRE_HTTP_PORT=0 means off, not 'pick one'."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_frame(model: str, sample_rate: Any, **fields: Any) -> dict[str, Any]:
    """The first frame; ``sample_rate`` untyped, as tests send wrong types on purpose."""
    return {
        "type": "config",
        "model": {"name": model},
        "sample_rate": sample_rate,
        "encoding": "PCM_S16LE",
        "channels": 1,
        **fields,
    }


END = {"type": "end"}


@dataclass(frozen=True)
class SocketResult:
    """Every text frame the server sent, and how it closed the socket."""

    messages: list[dict[str, Any]]
    close_code: int | None

    @property
    def windows(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "window"]

    @property
    def outcome(self) -> dict[str, Any]:
        return self.messages[-1]


async def send_frames(socket: aiohttp.ClientWebSocketResponse, frames: Sequence[Frame]) -> None:
    for frame in frames:
        if isinstance(frame, bytes):
            await socket.send_bytes(frame)
        else:
            await socket.send_str(json.dumps(frame))


async def read_all(socket: aiohttp.ClientWebSocketResponse) -> SocketResult:
    messages = [json.loads(m.data) async for m in socket if m.type == aiohttp.WSMsgType.TEXT]
    return SocketResult(messages, socket.close_code)


async def stream_frames(
    url: str,
    frames: Sequence[Frame],
    headers: Mapping[str, str] | None = None,
    origin: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> SocketResult:
    """Opens ``url`` (``http(s)://host:port/ws``), sends ``frames`` and reads to the close."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            url, headers=dict(headers or {}), origin=origin, ssl=ssl_context or True
        ) as socket,
    ):
        await send_frames(socket, frames)
        return await read_all(socket)


async def get_json(
    url: str, headers: Mapping[str, str] | None = None, ssl_context: ssl.SSLContext | None = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=dict(headers or {}), ssl=ssl_context or True) as reply,
    ):
        return reply.status, await reply.json()


def web_repository(root: Path) -> Path:
    """``tiny-audio`` (8 kHz, 0.5-s windows every 0.25 s) and a features model beside it."""
    write_tiny_audio_model(root)
    write_tiny_model(root, "tiny-mlp")
    return root


async def started(repository: Path, **overrides: object) -> App:
    """A server with the web port on loopback and limits a test reaches quickly."""
    settings: dict[str, object] = {
        "http_port": free_port(),
        "http_host": "127.0.0.1",
        "max_chunk_bytes": 16 * 1024,
        "stream_idle_timeout_seconds": 1.0,
        "max_streams": 2,
        **overrides,
    }
    return await create_server(loopback_config(repository, **settings))


def ws_url(app: App, scheme: str = "http") -> str:
    assert app.web is not None
    return f"{scheme}://127.0.0.1:{app.web.port}/ws"


def api_url(app: App, scheme: str = "http") -> str:
    assert app.web is not None
    return f"{scheme}://127.0.0.1:{app.web.port}/api/models"
