"""A stream's messages, one at a time, under its idle timeout and the server's drain.

A 100 ms audio chunk is one message, ten a second per stream, so what each read costs is paid by
every stream ten times a second. Waiting for "the next message, or the idle timeout, or the
drain" with ``asyncio.wait`` over a read task and a drain task cost two tasks and a timer per
message, more than decoding the audio. Here a read is a plain ``await`` on the request iterator,
and the two rare events interrupt it instead: one timer per stream, re-armed only when it fires
(at most once per idle period), and one drain callback per stream. Either cancels the reading
task while, and only while, it waits for a message; the read then ends as the caller expects
(``None`` for the drain, DEADLINE_EXCEEDED for the idle stream), and a cancellation that came
from elsewhere (the client went away) passes through untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

from server.errors import DeadlineExpired

MessageT = TypeVar("MessageT")
DRAIN, IDLE = "drain", "idle"


class DrainSignal:
    """The server's drain as callbacks: ``subscribe`` returns the function that unsubscribes."""

    def __init__(self, started: asyncio.Event) -> None:
        self._started = started
        self._callbacks: set[Callable[[], None]] = set()

    @property
    def started(self) -> bool:
        return self._started.is_set()

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._callbacks.add(callback)
        return lambda: self._callbacks.discard(callback)

    def fire(self) -> None:
        self._started.set()
        for callback in list(self._callbacks):
            callback()


class MessageReader(Generic[MessageT]):
    """``await reader.next()``: the next message; None once the client half-closed or the
    server began draining. ``close()`` when the stream ends."""

    def __init__(
        self,
        requests: AsyncIterator[MessageT],
        idle_timeout: float,
        drain: DrainSignal,
        gone: Callable[[], bool] = lambda: False,
    ) -> None:
        """``gone``: whether the caller went away (gRPC's ``context.done()``): its request
        iterator then ends as if the caller had half-closed, and the stream must end CANCELLED,
        not answer the half-close."""
        self._gone = gone
        self._requests = requests
        self._idle_timeout = idle_timeout
        self._drain = drain
        self._loop = asyncio.get_running_loop()
        self._reader: asyncio.Task[object] | None = None  # set only while waiting to read
        self._read_started = 0.0
        self._interrupted: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._unsubscribe: Callable[[], None] | None = None

    async def next(self) -> MessageT | None:
        if self._drain.started:
            return None
        task = asyncio.current_task()
        assert task is not None
        self._read_started = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_at(self._read_started + self._idle_timeout, self._idle)
            self._unsubscribe = self._drain.subscribe(self._draining)
        self._reader = task
        try:
            message = await anext(self._requests, None)
            if message is None:  # half-closed, or gone: gRPC ends the iterator first and
                await asyncio.sleep(0)  # marks the call a moment later (once per stream)
                if self._gone():
                    raise asyncio.CancelledError  # counted and logged as CANCELLED, as it is
            return message
        except asyncio.CancelledError:
            why, self._interrupted = self._interrupted, None
            if why is None or task.uncancel() > 0:
                raise
            if why == DRAIN:
                return None
            raise DeadlineExpired(
                f"audio: no message for {self._idle_timeout:g} s; the stream was closed"
            ) from None
        finally:
            self._reader = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _idle(self) -> None:
        now = self._loop.time()
        reading = self._reader is not None
        if reading and now - self._read_started >= self._idle_timeout:
            self._timer = None
            self._interrupt(IDLE)
            return
        start = self._read_started if reading else now
        self._timer = self._loop.call_at(start + self._idle_timeout, self._idle)

    def _draining(self) -> None:
        if self._reader is not None:
            self._interrupt(DRAIN)

    def _interrupt(self, why: str) -> None:
        if self._reader is not None and self._interrupted is None:
            self._interrupted = why
            self._reader.cancel()
