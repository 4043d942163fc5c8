"""Several connections to one target, taken in turn: what both clients need to reach every
worker process of a server.

A server run with several worker processes (``GENRE_WORKERS``) has them all listening on one
port with SO_REUSEPORT, and the kernel balances *connections* across them, not calls: a client
with one channel (one TCP connection) only ever reaches one worker. Opening N channels and
handing each call the next one spreads the calls over up to N workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

from client.options import merged_channel_options

T = TypeVar("T")

ChannelOptions = list[tuple[str, int | str]]

LOCAL_SUBCHANNEL_POOL = "grpc.use_local_subchannel_pool"
"""gRPC shares subchannels (and so TCP connections) between channels with identical arguments
through a global pool; a per-channel pool is what makes N channels N connections."""


def connection_options(
    overrides: Mapping[str, int | str] | None, connections: int
) -> ChannelOptions:
    """The channel options for each of ``connections`` channels; raises ValueError below 1.

    With more than one, every channel gets its own subchannel pool, laid over the caller's
    options too: a shared pool would fold the channels back into one connection.
    """
    if connections < 1:
        raise ValueError(f"connections must be >= 1, got {connections}")
    if connections == 1:
        return merged_channel_options(overrides)
    return merged_channel_options({**(overrides or {}), LOCAL_SUBCHANNEL_POOL: 1})


def open_channels(
    open_channel: Callable[[ChannelOptions], T],
    *,
    connections: int,
    overrides: Mapping[str, int | str] | None,
) -> tuple[T, ...]:
    """``connections`` channels made by ``open_channel(options)``, options checked first so a
    bad count opens nothing."""
    options = connection_options(overrides, connections)
    return tuple(open_channel(options) for _ in range(connections))


class RoundRobin(Generic[T]):
    """Hands out ``items`` in turn, safely from several threads (the blocking client may be
    shared between them)."""

    def __init__(self, items: Sequence[T]) -> None:
        if not items:
            raise ValueError("RoundRobin needs at least one item")
        self._items = tuple(items)
        self._turn = 0
        self._lock = threading.Lock()

    @property
    def first(self) -> T:
        return self._items[0]

    def next(self) -> T:
        with self._lock:
            item = self._items[self._turn]
            self._turn = (self._turn + 1) % len(self._items)
        return item
