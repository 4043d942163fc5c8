"""Client configuration: the retry policy and the channel options every client starts from."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

MIB = 1024 * 1024

DEFAULT_MAX_MESSAGE_BYTES = 64 * MIB
"""Large enough for a dense batch of ~250k rows x 57 float32 features or a long audio chunk;
gRPC's 4 MiB default receive limit would reject bulk requests with an opaque RESOURCE_EXHAUSTED."""

DEFAULT_CHANNEL_OPTIONS: Mapping[str, int] = {
    "grpc.max_send_message_length": DEFAULT_MAX_MESSAGE_BYTES,
    "grpc.max_receive_message_length": DEFAULT_MAX_MESSAGE_BYTES,
    # Ping an otherwise quiet connection every minute so a dead peer behind a NAT or load
    # balancer is noticed during a long stream instead of hanging until the deadline.
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
    # Pinging without calls gets a client GOAWAY'd (too_many_pings) by servers on gRPC's
    # default enforcement policy; an idle channel reconnects on the next call anyway.
    "grpc.keepalive_permit_without_calls": 0,
}


def merged_channel_options(
    overrides: Mapping[str, int | str] | None = None,
) -> list[tuple[str, int | str]]:
    """The defaults above with the caller's options laid over them, in gRPC's list form."""
    merged: dict[str, int | str] = {**DEFAULT_CHANNEL_OPTIONS, **(overrides or {})}
    return sorted(merged.items())


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, applied to UNAVAILABLE only.

    UNAVAILABLE is the one status gRPC guarantees is safe to retry (the server did not act on the
    request, or it is restarting); every other status means the request itself was judged, so
    retrying it would only repeat the answer or hide a bug. The delay before retry ``n`` (1-based)
    is uniform in ``[0, min(max_backoff, initial_backoff * multiplier ** (n - 1))]``, as in gRPC's
    own retry design (A6), so many clients retrying at once spread out instead of stampeding.
    ``max_attempts=1`` turns retries off. All attempts share the call's one deadline.
    """

    max_attempts: int = 4
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_backoff <= 0:
            raise ValueError(f"initial_backoff must be > 0 seconds, got {self.initial_backoff}")
        if self.max_backoff < self.initial_backoff:
            raise ValueError(
                f"max_backoff ({self.max_backoff}) must be >= initial_backoff "
                f"({self.initial_backoff})"
            )
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        if retry_number < 1:
            raise ValueError(f"retry_number starts at 1, got {retry_number}")
        ceiling = min(
            self.max_backoff, self.initial_backoff * self.multiplier ** (retry_number - 1)
        )
        return rng.uniform(0.0, ceiling)


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class CallSettings:
    """Per-client defaults for every call; each method's ``timeout=`` overrides the deadline.

    ``stream_deadline_seconds`` is separate and long because an audio stream lasts as long as
    its audio (a real-time stream of a 10-minute set takes 10 minutes); it still exists so a
    stream whose server vanished cannot hang forever.
    """

    deadline_seconds: float = 10.0
    stream_deadline_seconds: float = 3600.0
    retry: RetryPolicy = DEFAULT_RETRY

    def __post_init__(self) -> None:
        if self.deadline_seconds <= 0:
            raise ValueError(f"deadline_seconds must be > 0, got {self.deadline_seconds}")
        if self.stream_deadline_seconds <= 0:
            raise ValueError(
                f"stream_deadline_seconds must be > 0, got {self.stream_deadline_seconds}"
            )

    def unary_timeout(self, timeout: float | None) -> float:
        return _positive(self.deadline_seconds if timeout is None else timeout)

    def stream_timeout(self, timeout: float | None) -> float:
        return _positive(self.stream_deadline_seconds if timeout is None else timeout)


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {seconds}")
    return seconds
