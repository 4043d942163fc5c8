"""The web port (``GENRE_HTTP_PORT``, 0: off): the page, ``/api/models`` and the ``/ws`` bridge.

Served by aiohttp inside the server's own event loop, beside ``grpc.aio``: the bridge then calls
the servicer directly (``server.web.bridge``), and an idle port is one more listening socket in
the loop's selector, nothing more (``bench/studies/web_idle.py`` measures it against the gRPC
path). The TLS settings of gRPC apply here too: a certificate makes the page HTTPS and the
socket WSS, and a client CA makes browsers present a client certificate.

With worker processes every worker binds the port with SO_REUSEPORT (the supervisor holds it for
them, as it holds the gRPC port), so the kernel spreads browser connections over the workers as
it spreads gRPC ones, and each stream counts against the limits of the worker it reached.

Routes: ``/`` the page, ``/static/*`` its files (shipped in the package, no build step, no CDN),
``/api/models`` the ``ListModels`` answer in protobuf's JSON mapping (``.proto`` field names;
under auth, the token must be granted ``ListModels``), ``/ws`` the stream.
"""

from __future__ import annotations

import ssl
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import WSCloseCode, web
from google.protobuf import json_format

from server.auth import BearerTokenInterceptor
from server.config import ServerConfig
from server.logs import REQUEST_ID_KEY, get_logger, request_id
from server.registry import Registry
from server.responses import list_models_response
from server.servicer import GenreClassifierServicer
from server.web.bridge import SocketCall, run_stream, trace_headers
from server.web.guard import (
    HTTP_STATUS,
    bearer_token,
    origin_allowed,
    origin_refusal,
    refuse,
)

log = get_logger("server.web")
STATIC = Path(__file__).with_name("static")
SHUTDOWN_SECONDS = 1.0  # the drain has already waited for streams; this is for stragglers
# The page's only sources are its own files; the microphone only for this page.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "microphone=(self)",
}


@dataclass(frozen=True)
class WebBackend:
    """What the routes use: the same servicer, registry and token grants as gRPC."""

    config: ServerConfig
    servicer: GenreClassifierServicer
    registry: Registry
    auth: BearerTokenInterceptor | None


BACKEND = web.AppKey("backend", WebBackend)
Sockets = weakref.WeakSet[web.WebSocketResponse]
SOCKETS = web.AppKey("sockets", Sockets)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class WebServer:
    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        """Closes the port; sockets still open (none after a drain, but for one still waiting
        for its token) end with 1001, going away."""
        await self.runner.cleanup()


def tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    if not config.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    if config.tls_client_ca_file:
        context.load_verify_locations(config.tls_client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def start_web(backend: WebBackend, share_port: bool) -> WebServer:
    """``share_port``: a worker process, binding the port with the others (SO_REUSEPORT)."""
    config = backend.config
    app = web.Application(middlewares=[_headers])
    app[BACKEND] = backend
    app[SOCKETS] = Sockets()
    app.router.add_get("/", _index)
    app.router.add_get("/api/models", _models)
    app.router.add_get("/ws", _socket)
    app.router.add_static("/static", STATIC)
    app.on_shutdown.append(_close_sockets)
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
    )
    await runner.setup()
    site = web.TCPSite(
        runner,
        config.http_host.strip("[]") or None,
        config.http_port,
        ssl_context=tls_context(config),
        reuse_port=share_port,
    )
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = int(runner.addresses[0][1])
    return WebServer(runner, port)


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:  # a WebSocket's handshake went out already
        response.headers.update(HEADERS)
    return response


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


def _peer(request: web.Request) -> str:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peername[0]}:{peername[1]}" if peername else "unknown"


def _refused(status: int, code: str, message: str) -> web.Response:
    response = web.json_response({"status": code, "message": message}, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _models(request: web.Request) -> web.StreamResponse:
    backend = request.app[BACKEND]
    started = time.perf_counter()
    refusal = refuse(backend.auth, bearer_token(request.headers), "ListModels")
    if refusal is not None:
        log.warning("auth_refused", method="ListModels", protocol="http", status=refusal[0].name,
                    peer=_peer(request))  # fmt: skip
        return _refused(HTTP_STATUS[refusal[0]], refusal[0].name, refusal[1])
    body = json_format.MessageToDict(
        list_models_response(backend.registry.table, backend.config.min_probability),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    log.info("request", method="ListModels", protocol="http", status="OK", peer=_peer(request),
             latency_ms=round((time.perf_counter() - started) * 1000, 3))  # fmt: skip
    return web.json_response(body)


async def _socket(request: web.Request) -> web.StreamResponse:
    """Origin and header token checked before the handshake, so a refusal is a plain 403 or
    401 the browser's console shows; everything after it is ``bridge.run_stream``'s."""
    backend = request.app[BACKEND]
    config = backend.config
    origin = request.headers.get("Origin")
    if not origin_allowed(origin, request.host, request.scheme, config.http_origins):
        log.warning("origin_refused", origin=origin, peer=_peer(request))
        return _refused(403, "PERMISSION_DENIED", origin_refusal(str(origin), config.http_origins))
    header = bearer_token(request.headers)
    if header is not None and (refusal := refuse(backend.auth, header, "ClassifyAudioStream")):
        log.warning("auth_refused", method="ClassifyAudioStream", protocol="websocket",
                    status=refusal[0].name, peer=_peer(request))  # fmt: skip
        return _refused(HTTP_STATUS[refusal[0]], refusal[0].name, refusal[1])
    # Chunks up to twice the limit arrive whole and get the stream's precise RESOURCE_EXHAUSTED;
    # larger frames are refused by aiohttp (close 1009) before they are buffered.
    socket = web.WebSocketResponse(max_msg_size=2 * config.max_chunk_bytes + 4096)
    await socket.prepare(request)
    request.app[SOCKETS].add(socket)
    call_id = request_id([(REQUEST_ID_KEY, request.headers.get("X-Request-Id", ""))])
    call = SocketCall(
        socket, call_id, f"websocket:{_peer(request)}", trace_headers(request.headers)
    )
    await run_stream(
        socket,
        backend.servicer,
        backend.auth,
        call,
        config.stream_idle_timeout_seconds,
        authenticated=header is not None,
    )
    return socket


async def _close_sockets(app: web.Application) -> None:
    sockets: Sockets = app[SOCKETS]
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")
