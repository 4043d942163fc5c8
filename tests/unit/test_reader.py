"""A stream's reader: messages in order, the idle timeout and the drain interrupt only a read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from server.errors import DeadlineExpired
from server.streaming.reader import DrainSignal, MessageReader


class Source:
    """A request iterator whose messages the test releases one at a time."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()

    async def messages(self) -> AsyncIterator[str]:
        while (message := await self.queue.get()) is not None:
            yield message


async def test_messages_come_in_order_then_none_at_the_half_close() -> None:
    source = Source()
    reader = MessageReader(source.messages(), 5.0, DrainSignal(asyncio.Event()))
    for message in ("config", "a", "b", None):
        source.queue.put_nowait(message)
    assert [await reader.next() for _ in range(4)] == ["config", "a", "b", None]
    reader.close()


async def test_a_silent_stream_ends_deadline_exceeded_after_the_idle_timeout() -> None:
    source = Source()
    reader = MessageReader(source.messages(), 0.2, DrainSignal(asyncio.Event()))
    source.queue.put_nowait("config")
    assert await reader.next() == "config"
    started = asyncio.get_running_loop().time()
    with pytest.raises(DeadlineExpired, match=r"no message for 0\.2 s"):
        await reader.next()
    assert 0.15 < asyncio.get_running_loop().time() - started < 1.0
    reader.close()


async def test_time_spent_between_reads_does_not_count_as_idle() -> None:
    """Idle means waiting for a message: a stream that computes for longer than the timeout
    between reads, then reads promptly, is not cut off."""
    source = Source()
    reader = MessageReader(source.messages(), 0.2, DrainSignal(asyncio.Event()))
    source.queue.put_nowait("config")
    assert await reader.next() == "config"
    await asyncio.sleep(0.35)  # "scoring a window"; the timer fires meanwhile and re-arms
    asyncio.get_running_loop().call_later(0.1, source.queue.put_nowait, "a")
    assert await reader.next() == "a"
    reader.close()


async def test_the_drain_ends_a_waiting_read_with_none() -> None:
    source = Source()
    signal = DrainSignal(asyncio.Event())
    reader = MessageReader(source.messages(), 30.0, signal)
    source.queue.put_nowait("config")
    assert await reader.next() == "config"
    asyncio.get_running_loop().call_later(0.05, signal.fire)
    assert await reader.next() is None
    assert await reader.next() is None  # once draining, no more reads
    reader.close()


async def test_a_cancellation_from_elsewhere_passes_through() -> None:
    source = Source()
    reader = MessageReader(source.messages(), 30.0, DrainSignal(asyncio.Event()))
    task = asyncio.ensure_future(reader.next())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    reader.close()


async def test_a_caller_that_went_away_ends_cancelled_not_half_closed() -> None:
    """gRPC ends a cancelled call's request iterator before it marks the call done."""
    source = Source()
    gone = False
    reader = MessageReader(source.messages(), 30.0, DrainSignal(asyncio.Event()), lambda: gone)
    source.queue.put_nowait(None)
    gone = True
    with pytest.raises(asyncio.CancelledError):
        await reader.next()
    reader.close()


async def test_close_unsubscribes_from_the_drain() -> None:
    signal = DrainSignal(asyncio.Event())
    reader = MessageReader(Source().messages(), 30.0, signal)
    task = asyncio.ensure_future(reader.next())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    reader.close()
    signal.fire()  # nothing left to interrupt, nothing raised
    assert signal.started
