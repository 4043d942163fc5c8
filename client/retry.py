"""Runs one unary call with retries on UNAVAILABLE inside one overall deadline.

Written out here instead of as a gRPC service config because the service config caps attempts at
five, hides the attempt count from the caller, and behaves differently per stack; a dozen lines of
loop are easier to test. Streaming calls are never retried: their request iterator is consumed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from client.errors import from_rpc_error, status_of
from client.options import RetryPolicy

T = TypeVar("T")

_RNG = random.Random()


def _delay_or_give_up(
    policy: RetryPolicy, attempts: int, error: grpc.RpcError, deadline: float, rng: random.Random
) -> float | None:
    """The backoff before the next attempt, or None when the call must fail now.

    Fails when the status is not UNAVAILABLE, the attempts are spent, or the backoff would run
    past the deadline (the last UNAVAILABLE is more useful to the caller than a
    DEADLINE_EXCEEDED from an attempt doomed to time out).
    """
    code, _ = status_of(error)
    if code is not grpc.StatusCode.UNAVAILABLE or attempts >= policy.max_attempts:
        return None
    delay = policy.backoff(attempts, rng)
    if time.monotonic() + delay >= deadline:
        return None
    return delay


def call_with_retry(
    attempt: Callable[[float], T],
    *,
    method: str,
    policy: RetryPolicy,
    total_seconds: float,
    rng: random.Random = _RNG,
) -> T:
    """Calls ``attempt(seconds_left)`` until it succeeds or must fail; raises GenreClientError."""
    deadline = time.monotonic() + total_seconds
    attempts = 0
    while True:
        attempts += 1
        try:
            return attempt(max(deadline - time.monotonic(), 0.0))
        except grpc.RpcError as error:
            delay = _delay_or_give_up(policy, attempts, error, deadline, rng)
            if delay is None:
                raise from_rpc_error(error, method=method, attempts=attempts) from error
        time.sleep(delay)


async def acall_with_retry(
    attempt: Callable[[float], Awaitable[T]],
    *,
    method: str,
    policy: RetryPolicy,
    total_seconds: float,
    rng: random.Random = _RNG,
) -> T:
    """The asyncio twin of :func:`call_with_retry`."""
    deadline = time.monotonic() + total_seconds
    attempts = 0
    while True:
        attempts += 1
        try:
            return await attempt(max(deadline - time.monotonic(), 0.0))
        except grpc.RpcError as error:
            delay = _delay_or_give_up(policy, attempts, error, deadline, rng)
            if delay is None:
                raise from_rpc_error(error, method=method, attempts=attempts) from error
        await asyncio.sleep(delay)
