"""Optional bearer-token authentication, as a gRPC server interceptor.

Tokens come from a file, one per line: ``TOKEN`` (may call every method) or
``TOKEN ClassifyFeatures,ListModels`` (only those). A call without a well-formed
``authorization: Bearer <token>`` header, or with an unknown token, gets UNAUTHENTICATED; a known
token calling a method it was not granted gets PERMISSION_DENIED. Tokens are compared in constant
time (digests compared with ``hmac.compare_digest``, every token checked), never logged, and the
health and reflection services are exempt by default so probes and tooling keep working.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from server.logs import get_logger
from server.metrics import ServerMetrics

log = get_logger("server.auth")
ALL_METHODS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Grant:
    digest: bytes
    methods: frozenset[str]  # empty: every method


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def load_grants(path: Path) -> tuple[Grant, ...]:
    grants = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
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
        service, _, method = handler_call_details.method.lstrip("/").partition("/")
        if handler is None or service in self._exempt:
            return handler
        metadata: Mapping[str, Any] = dict(handler_call_details.invocation_metadata or ())
        refusal = self._refusal(metadata.get("authorization"), method)
        if refusal is None:
            return handler
        code, message = refusal
        self._failures.labels(code.name).inc()
        log.warning("auth_refused", method=method, status=code.name)
        return _refusing(handler, code, message)

    def _refusal(self, header: object, method: str) -> tuple[grpc.StatusCode, str] | None:
        if not isinstance(header, str) or not header.startswith("Bearer ") or len(header) <= 7:
            return grpc.StatusCode.UNAUTHENTICATED, "authorization: a Bearer token is required"
        given = _digest(header[7:].strip())
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
    handler: grpc.RpcMethodHandler[Any, Any], code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape that answers ``code`` without running the method."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
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
