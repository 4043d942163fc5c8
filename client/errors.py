"""The one exception the client raises for a failed call.

Callers get ``GenreClientError`` rather than a raw ``grpc.RpcError`` because the sync and asyncio
stacks raise different RpcError subclasses, and after retries the caller also wants to know how
many attempts were made. The original RpcError stays reachable as ``__cause__``.
"""

from __future__ import annotations

import grpc


class GenreClientError(Exception):
    """A call ended with a non-OK gRPC status (after any retries).

    ``code`` is the ``grpc.StatusCode``; ``details`` is the server's message; ``attempts`` counts
    the calls made, retries included; ``method`` names the RPC.
    """

    def __init__(
        self, code: grpc.StatusCode, details: str, *, method: str = "", attempts: int = 1
    ) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.method = method
        self.attempts = attempts


def status_of(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """The status code and details of an RpcError from either stack.

    A bare ``grpc.RpcError`` (raised by an interceptor, say) may lack ``code()``; it reads as
    UNKNOWN so that it is never mistaken for a retryable UNAVAILABLE.
    """
    if not callable(getattr(error, "code", None)):
        return grpc.StatusCode.UNKNOWN, str(error)
    return error.code(), error.details() or ""


def from_rpc_error(error: grpc.RpcError, *, method: str, attempts: int = 1) -> GenreClientError:
    """Wraps ``error`` for raising with ``raise ... from error``."""
    code, details = status_of(error)
    return GenreClientError(code, details, method=method, attempts=attempts)
