"""Optional bearer-token authentication, as a gRPC server interceptor.

Tokens come from a file, one per line: ``TOKEN`` (may call every method) or
``TOKEN ClassifyFeatures,ListModels`` (only those). ``#`` starts a comment at the start of a line
or after whitespace; a ``#`` anywhere else (inside a token or a method list) is refused at start
with the line's number, because cutting the line there would silently serve a different token
than the one written. A call without a well-formed ``authorization: Bearer <token>`` header (the
scheme in any case, RFC 7235), or with an unknown token, gets UNAUTHENTICATED; a known token
calling a method it was not granted gets PERMISSION_DENIED. Tokens are compared in constant time
(digests compared with ``hmac.compare_digest``, every token checked), never logged, and the
health and reflection services are exempt by default so probes and tooling keep working.

An exemption names a whole service (``grpc.health.v1.Health``) or one method of one
(``inference.GRPCInferenceService/ServerReady``): the Open Inference Protocol's liveness and
readiness probes share their service with inference, and are exempt by default because they tell
exactly what the health service tells anyone (``ServerLive``: ``liveness``; ``ServerReady``: the
overall readiness; ``ModelReady``: a model's readiness, as ``genre.v1.GenreClassifier/<model>``).

A refused call never reaches the servicer, so the refusal itself does what the servicer does for
every other call: its ``auth_refused`` log line and its trailing metadata carry the call's
``x-request-id`` (``server.logs.request_id``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from server.logs import REQUEST_ID_KEY, call_metadata, get_logger
from server.metrics import ServerMetrics
from server.tracing.context import trace_id_of

log = get_logger("server.auth")
ALL_METHODS: frozenset[str] = frozenset()
BEARER = "bearer"
_COMMENT = re.compile(r"(?:^|\s)#.*$")


@dataclass(frozen=True)
class Grant:
    digest: bytes
    methods: frozenset[str]  # empty: every method


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def load_grants(path: Path) -> tuple[Grant, ...]:
    grants = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = _COMMENT.sub("", raw, count=1).strip()
        if not line:
            continue
        if "#" in line:
            raise ValueError(
                f"{path}:{number}: '#' inside a token or method list; a comment starts with '#' "
                "at the start of a line or after a space"
            )
        token, _, methods = line.partition(" ")
        if len(token) < 16:
            raise ValueError(f"{path}:{number}: tokens must be at least 16 characters")
        names = frozenset(m.strip() for m in methods.split(",") if m.strip())
        grants.append(Grant(_digest(token), names))
    if not grants:
        raise ValueError(f"{path}: no tokens")
    return tuple(grants)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(
        self, grants: Iterable[Grant], exempt_services: Iterable[str], metrics: ServerMetrics
    ) -> None:
        self._grants = tuple(grants)
        self._exempt = frozenset(exempt_services)
        self._failures = metrics.auth_failures

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        path = handler_call_details.method.lstrip("/")
        service, _, method = path.partition("/")
        if handler is None or service in self._exempt or path in self._exempt:
            return handler
        metadata: Mapping[str, Any] = dict(handler_call_details.invocation_metadata or ())
        refusal = self._refusal(metadata.get("authorization"), method)
        if refusal is None:
            return handler
        code, message = refusal
        self._failures.labels(code.name).inc()
        return _refusing(handler, method, code, message)

    def check(self, header: object, method: str) -> tuple[grpc.StatusCode, str] | None:
        """The same decision for a caller outside gRPC (the web bridge, ``server.web``): None
        when ``header`` may call ``method``, else the status and message, counted as gRPC's."""
        refusal = self._refusal(header, method)
        if refusal is not None:
            self._failures.labels(refusal[0].name).inc()
        return refusal

    def _refusal(self, header: object, method: str) -> tuple[grpc.StatusCode, str] | None:
        scheme, _, credentials = header.partition(" ") if isinstance(header, str) else ("", "", "")
        token = credentials.strip()
        if scheme.lower() != BEARER or not token:
            return grpc.StatusCode.UNAUTHENTICATED, "authorization: a Bearer token is required"
        given = _digest(token)
        matched: Grant | None = None
        for grant in self._grants:  # no early exit: time does not depend on which token matched
            if hmac.compare_digest(given, grant.digest):
                matched = grant
        if matched is None:
            return grpc.StatusCode.UNAUTHENTICATED, "authorization: the token is not valid"
        if matched.methods and method not in matched.methods:
            return (
                grpc.StatusCode.PERMISSION_DENIED,
                f"authorization: the token may not call {method}",
            )
        return None


def _refusing(
    handler: grpc.RpcMethodHandler[Any, Any], method: str, code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape that answers ``code`` without running the method.

    It runs as the call, so it can read the call's metadata for its request id (and the trace
    id of its ``traceparent``: this line is the refused call's log line) and set the trailing
    metadata, as the servicer does for the calls it answers."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        call_id, traceparent, _ = call_metadata(context.invocation_metadata())
        trace_id = trace_id_of(traceparent)
        log.warning(
            "auth_refused",
            method=method,
            status=code.name,
            peer=context.peer(),
            request_id=call_id,
            **({"trace_id": trace_id} if trace_id else {}),
        )
        context.set_trailing_metadata(((REQUEST_ID_KEY, call_id),))
        await context.abort(code, message)

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(refuse, **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(refuse, **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
    return grpc.stream_stream_rpc_method_handler(refuse, **kwargs)
