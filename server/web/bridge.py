"""One browser stream: a WebSocket driven through ``ClassifyAudioStream`` itself, in-process.

The bridge does not re-implement a stream. It hands the servicer's own ``ClassifyAudioStream``
the WebSocket's frames as the request iterator a gRPC call would give it, and an object in place
of the gRPC call context (``SocketCall``, the five methods that path uses: the request id, peer,
trailing metadata, abort and write). So the stream slot, capacity admission, lateness guard,
chunk and length limits, idle timeout, drain, batcher, metrics (``protocol="websocket"``) and the
call's log line are the gRPC path's, with no second network hop. What is the bridge's own: the
Origin and token checks before the stream starts (``server.web.guard``), JSON in and out
(``server.web.messages``), and how a stream ends on the socket: a last text frame with the status
and message, then close code 1000 for OK or 4000 + the gRPC status code (4003 INVALID_ARGUMENT,
4008 RESOURCE_EXHAUSTED, 4016 UNAUTHENTICATED, ...), so a script can tell failures apart.

A ``traceparent`` and ``tracestate`` reach the stream as headers of the upgrade request
(``trace_headers``), where a proxy that traces (an ingress, a service mesh) puts them and a
non-browser client can set them; the stream's call then belongs to that trace as a gRPC one does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, NoReturn, cast

import grpc
from aiohttp import WSMsgType, web

from genre.v1 import genre_pb2
from server.auth import BearerTokenInterceptor
from server.errors import ServiceError
from server.logs import REQUEST_ID_KEY, get_logger
from server.servicer import GenreClassifierServicer
from server.tracing.context import TRACEPARENT_KEY, TRACESTATE_KEY
from server.web.guard import refuse
from server.web.messages import END, Request, answer, config_request, decode_text, outcome

log = get_logger("server.web")
PROTOCOL = "websocket"  # the protocol label of these streams' metrics and log lines
NORMAL_CLOSE = 1000
STATUS_CLOSE_BASE = 4000  # private-use close codes: 4000 + the gRPC status code
CLOSING = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
Metadata = tuple[tuple[str, str], ...]


def trace_headers(headers: Mapping[str, str]) -> Metadata:
    """The upgrade request's W3C trace headers, as the call's metadata would carry them."""
    return tuple(
        (key, value) for key in (TRACEPARENT_KEY, TRACESTATE_KEY) if (value := headers.get(key))
    )


class Aborted(Exception):
    """Raised by ``SocketCall.abort``, as ``grpc.aio``'s abort raises, to end the call."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class SocketCall:
    """Stands in for the gRPC call context on the ``ClassifyAudioStream`` path.

    ``last_arrival`` is the monotonic time of the latest frame read, so each answer carries its
    latency from the frame that completed its window to the answer leaving. ``trace``: the
    upgrade request's ``trace_headers``."""

    def __init__(
        self, socket: web.WebSocketResponse, request_id: str, peer: str, trace: Metadata = ()
    ) -> None:
        self._socket = socket
        self._metadata = ((REQUEST_ID_KEY, request_id), *trace)
        self._peer = peer
        self.last_arrival = time.monotonic()
        self.client_gone = False

    def invocation_metadata(self) -> Metadata:
        """The request id first (``_close`` reads it there), then the trace headers."""
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def done(self) -> bool:
        """Whether the browser left (its frames then end the way a cancelled gRPC call's do)."""
        return self.client_gone

    def set_trailing_metadata(self, metadata: Iterable[tuple[str, str]]) -> None:
        """The request id goes out in the last frame (``messages.outcome``) instead."""

    async def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn:
        raise Aborted(code, details)

    async def write(self, response: genre_pb2.ClassifyAudioStreamResponse) -> None:
        latency_ms = (time.monotonic() - self.last_arrival) * 1000
        try:
            await self._socket.send_str(answer(response, latency_ms))
        except ConnectionError:
            self.gone()

    async def requests(self, first: dict[str, Any] | None) -> AsyncIterator[Request]:
        """The socket's frames as ``ClassifyAudioStreamRequest`` messages; ``first``: the first
        text frame when the bridge already read it (for its token)."""
        if first is not None:
            yield config_request(first)
        async for frame in self._frames():
            self.last_arrival = time.monotonic()
            if frame.type == WSMsgType.BINARY:
                yield Request(audio=genre_pb2.AudioChunk(data=frame.data))
                continue
            message = decode_text(frame.data)
            if message.get("type") == END:
                return
            yield config_request(message)

    async def _frames(self) -> AsyncIterator[Any]:
        while True:
            frame = await self._socket.receive()
            if frame.type in CLOSING:
                self.gone()
            yield frame

    def gone(self) -> NoReturn:
        """The browser left mid-stream: what a gRPC client's cancel is, so the call ends as
        one does (CancelledError: status CANCELLED in its log line, its slot freed)."""
        self.client_gone = True
        raise asyncio.CancelledError("the browser closed the WebSocket")


async def run_stream(
    socket: web.WebSocketResponse,
    servicer: GenreClassifierServicer,
    auth: BearerTokenInterceptor | None,
    call: SocketCall,
    idle_timeout: float,
    authenticated: bool,
) -> None:
    """Streams; first checks the first frame's token when auth is on and no ``Authorization``
    header already passed (``authenticated``): a browser cannot set headers on a WebSocket."""
    first: dict[str, Any] | None = None
    if auth is not None and not authenticated:
        first, refusal = await _first_with_token(socket, auth, idle_timeout)
        if refusal is not None:
            await _close(socket, refusal[0], refusal[1], call)
            return
    try:
        await servicer.ClassifyAudioStream(
            call.requests(first),
            cast(grpc.aio.ServicerContext[Any, Any], call),
            protocol=PROTOCOL,
        )
    except Aborted as aborted:
        await _close(socket, aborted.code, aborted.details, call)
        return
    except asyncio.CancelledError:
        if not call.client_gone:
            raise
        return
    await _close(socket, grpc.StatusCode.OK, "", call)


async def _first_with_token(
    socket: web.WebSocketResponse, auth: BearerTokenInterceptor, idle_timeout: float
) -> tuple[dict[str, Any] | None, tuple[grpc.StatusCode, str] | None]:
    """The first frame and whether its ``token`` may stream; the token never leaves here."""
    try:
        async with asyncio.timeout(idle_timeout):
            frame = await socket.receive()
    except TimeoutError:  # no first frame, so no token: refused, and counted, as one
        return None, refuse(auth, None, "ClassifyAudioStream")
    message: dict[str, Any] = {}
    if frame.type == WSMsgType.TEXT:
        try:
            message = decode_text(frame.data)
        except ServiceError as error:
            return None, (error.code, str(error))
    token = message.pop("token", None)
    header = f"Bearer {token}" if isinstance(token, str) else None
    return message, refuse(auth, header, "ClassifyAudioStream")


async def _close(
    socket: web.WebSocketResponse, code: grpc.StatusCode, details: str, call: SocketCall
) -> None:
    request_id = call.invocation_metadata()[0][1]
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        log.warning(
            "auth_refused",
            method="ClassifyAudioStream",
            protocol=PROTOCOL,
            status=code.name,
            peer=call.peer(),
            request_id=request_id,
        )
    close_code = NORMAL_CLOSE if code == grpc.StatusCode.OK else STATUS_CLOSE_BASE + code.value[0]
    try:
        await socket.send_str(outcome(code.name, details, request_id))
        await socket.close(code=close_code, message=code.name.encode())
    except ConnectionError:  # the browser left first; nothing more to tell it
        pass
