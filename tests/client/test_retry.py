"""RetryPolicy, the retry loop's decisions, and the channel options every client starts from."""

from __future__ import annotations

import random

import grpc
import pytest

from client.errors import GenreClientError
from client.options import DEFAULT_MAX_MESSAGE_BYTES, RetryPolicy, merged_channel_options
from client.retry import call_with_retry


class StatusError(grpc.RpcError):
    """An RpcError as the sync stack raises it, with a chosen status."""

    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class Ceiling(random.Random):
    """Always draws the top of the jitter range, to make backoff deterministic."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"initial_backoff": 0.0}, "initial_backoff"),
        ({"initial_backoff": 2.0, "max_backoff": 1.0}, "max_backoff"),
        ({"multiplier": 0.5}, "multiplier"),
    ],
)
def test_policy_rejects_nonsense(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**fields)  # type: ignore[arg-type]


def test_backoff_grows_exponentially_up_to_the_cap_with_jitter_below_it() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=0.5, multiplier=2.0)
    assert [policy.backoff(n, Ceiling()) for n in range(1, 6)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.5, 0.5]
    )
    rng = random.Random(3)
    draws = [policy.backoff(3, rng) for _ in range(200)]
    assert all(0.0 <= d <= 0.4 for d in draws)
    assert max(draws) - min(draws) > 0.2


def test_retries_only_unavailable() -> None:
    codes = iter([grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])

    def attempt(seconds: float) -> str:
        raise StatusError(next(codes), "full")

    with pytest.raises(GenreClientError) as raised:
        call_with_retry(
            attempt, method="M", policy=RetryPolicy(initial_backoff=0.001), total_seconds=5.0
        )
    assert raised.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert raised.value.attempts == 2


def test_gives_up_rather_than_sleep_past_the_deadline() -> None:
    calls: list[float] = []

    def attempt(seconds: float) -> str:
        calls.append(seconds)
        raise StatusError(grpc.StatusCode.UNAVAILABLE, "down")

    policy = RetryPolicy(initial_backoff=10.0, max_backoff=10.0)
    with pytest.raises(GenreClientError) as raised:
        call_with_retry(attempt, method="M", policy=policy, total_seconds=0.5, rng=Ceiling())
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    assert len(calls) == 1
    assert 0.0 < calls[0] <= 0.5


def test_each_attempt_gets_what_is_left_of_one_deadline() -> None:
    budgets: list[float] = []

    def attempt(seconds: float) -> str:
        budgets.append(seconds)
        if len(budgets) < 3:
            raise StatusError(grpc.StatusCode.UNAVAILABLE)
        return "ok"

    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.01)
    assert call_with_retry(attempt, method="M", policy=policy, total_seconds=2.0) == "ok"
    assert budgets == sorted(budgets, reverse=True)
    assert budgets[0] <= 2.0


def test_a_bare_rpc_error_reads_as_unknown_and_is_not_retried() -> None:
    calls = 0

    def attempt(seconds: float) -> str:
        nonlocal calls
        calls += 1
        raise grpc.RpcError("from an interceptor")

    with pytest.raises(GenreClientError) as raised:
        call_with_retry(attempt, method="M", policy=RetryPolicy(), total_seconds=1.0)
    assert (raised.value.code, calls) == (grpc.StatusCode.UNKNOWN, 1)


def test_channel_options_set_message_limits_and_keepalive_and_take_overrides() -> None:
    options = dict(merged_channel_options({"grpc.keepalive_time_ms": 5_000, "grpc.lb": "x"}))
    assert options["grpc.max_send_message_length"] == DEFAULT_MAX_MESSAGE_BYTES
    assert options["grpc.max_receive_message_length"] == 64 * 1024 * 1024
    assert options["grpc.keepalive_time_ms"] == 5_000
    assert options["grpc.lb"] == "x"
