"""DynamicBatcher in isolation: slicing, ordering, failure fan-out, cancellation, closing."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from server.batcher import BatcherSettings, DynamicBatcher, RecentPeak
from server.errors import DeadlineExpired, Draining, Overloaded
from server.metrics import ServerMetrics
from server.tracing.context import CURRENT_CALL, CallTrace, FinishedBatch


class RecordingRunner:
    """Doubles each row and records the batch sizes it saw (thread-safe, it runs off the loop)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[int] = []
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        time.sleep(self.delay)
        with self._lock:
            self.batches.append(int(inputs.shape[0]))
        return (inputs * 2).astype(np.float32)


def batcher(
    runner: RecordingRunner, max_batch_size: int, max_queue_delay: float, max_queue_rows: int
) -> DynamicBatcher:
    settings = BatcherSettings(max_batch_size, max_queue_delay, max_queue_rows)
    made = DynamicBatcher(runner, settings, ServerMetrics.create(), ("test", "1"))
    made.start()
    return made


def rows(start: int, count: int) -> np.ndarray:
    return np.arange(start, start + count, dtype=np.float32).reshape(count, 1)


async def test_each_caller_gets_its_own_rows_back_in_order() -> None:
    runner = RecordingRunner()
    subject = batcher(runner, max_batch_size=64, max_queue_delay=0.05, max_queue_rows=256)
    results = await asyncio.gather(*(subject.submit(rows(10 * i, i + 1)) for i in range(6)))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result.outputs, rows(10 * i, i + 1) * 2)
    assert sum(runner.batches) == sum(range(1, 7))
    assert len(runner.batches) == 1
    assert results[0].batch_rows == 21
    await subject.close()


async def test_batches_never_exceed_max_batch_size_except_one_large_request() -> None:
    runner = RecordingRunner()
    subject = batcher(runner, max_batch_size=4, max_queue_delay=0.01, max_queue_rows=64)
    await asyncio.gather(
        *(subject.submit(rows(i, 3)) for i in range(5)), subject.submit(rows(0, 9))
    )
    assert runner.batches.count(9) == 1
    assert all(size <= 4 for size in runner.batches if size != 9)
    await subject.close()


async def test_a_runner_failure_reaches_every_caller_of_the_batch() -> None:
    def explode(inputs: np.ndarray) -> np.ndarray:
        raise RuntimeError("boom")

    subject = DynamicBatcher(
        explode, BatcherSettings(4, 0.05, 64), ServerMetrics.create(), ("test", "1")
    )
    subject.start()
    outcomes = await asyncio.gather(
        subject.submit(rows(0, 1)), subject.submit(rows(1, 1)), return_exceptions=True
    )
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)
    await subject.close()


async def prime(subject: DynamicBatcher, callers: int) -> None:
    """A burst of concurrent callers, after which the batcher expects that much company."""
    await asyncio.gather(*(subject.submit(rows(0, 1)) for _ in range(callers)))


async def test_a_lone_caller_is_not_kept_waiting_for_company() -> None:
    runner = RecordingRunner()
    subject = batcher(runner, max_batch_size=64, max_queue_delay=5.0, max_queue_rows=256)
    result = await asyncio.wait_for(subject.submit(rows(0, 1)), timeout=2.5)
    assert result.batch_rows == 1
    await subject.close()


async def test_after_a_burst_the_batcher_waits_to_gather_callers() -> None:
    runner = RecordingRunner()
    subject = batcher(runner, max_batch_size=64, max_queue_delay=0.5, max_queue_rows=256)
    await prime(subject, 4)
    first = asyncio.ensure_future(subject.submit(rows(0, 1)))
    await asyncio.sleep(0.05)  # arrives later than the first, inside the delay
    second = asyncio.ensure_future(subject.submit(rows(1, 1)))
    assert (await first).batch_rows == (await second).batch_rows == 2
    await subject.close()


def test_recent_peak_forgets_after_two_windows() -> None:
    peak = RecentPeak(window=0.05)
    peak.observe(7)
    assert peak.peak() == 7
    time.sleep(0.06)
    assert peak.peak() == 7  # still the previous window
    time.sleep(0.11)
    assert peak.peak() == 0


async def test_cancelled_and_expired_work_is_skipped() -> None:
    runner = RecordingRunner()
    subject = batcher(runner, max_batch_size=64, max_queue_delay=0.1, max_queue_rows=256)
    await prime(subject, 10)
    runner.batches.clear()
    cancelled = asyncio.ensure_future(subject.submit(rows(0, 5)))
    expiring = asyncio.ensure_future(subject.submit(rows(0, 7), deadline=time.monotonic() + 0.02))
    kept = asyncio.ensure_future(subject.submit(rows(0, 2)))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(DeadlineExpired):
        await expiring
    assert len((await kept).outputs) == 2
    assert runner.batches == [2]
    await subject.close()


async def test_queue_bound_and_closing_refuse_new_work() -> None:
    runner = RecordingRunner()
    subject = batcher(runner, max_batch_size=8, max_queue_delay=0.2, max_queue_rows=8)
    await prime(subject, 4)
    waiting = asyncio.ensure_future(subject.submit(rows(0, 6)))
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await subject.submit(rows(0, 3))
    closing = asyncio.ensure_future(subject.close())
    await asyncio.sleep(0)
    with pytest.raises(Draining):
        await subject.submit(rows(0, 1))
    assert len((await waiting).outputs) == 6  # queued work still finishes on close
    await closing


class ThreadRecorder:
    """Notes which thread ran each batch; sleeps ``delay`` seconds per batch."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.threads: list[int] = []

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        time.sleep(self.delay)
        self.threads.append(threading.get_ident())
        return inputs.astype(np.float32)


async def bursts(runner: ThreadRecorder, inline_seconds: float) -> list[bool]:
    """Five bursts of four concurrent one-row calls; for each batch, whether it ran on the
    loop's thread."""
    settings = BatcherSettings(8, 0.05, 64, inline_seconds=inline_seconds)
    subject = DynamicBatcher(runner, settings, ServerMetrics.create(), ("test", "1"))
    subject.start()
    for burst in range(5):
        await asyncio.gather(*(subject.submit(rows(4 * burst + i, 1)) for i in range(4)))
    await subject.close()
    loop_thread = threading.get_ident()
    return [thread == loop_thread for thread in runner.threads]


async def test_a_fast_batch_of_callers_together_runs_on_the_loops_thread() -> None:
    ran_inline = await bursts(ThreadRecorder(0.0), inline_seconds=0.002)
    assert not ran_inline[0]  # the first batch: its speed is not known yet
    assert ran_inline[-1]  # once known, and callers come together: on the loop's thread


async def test_a_lone_caller_a_slow_batch_and_a_zero_budget_use_the_inference_thread() -> None:
    settings = BatcherSettings(8, 0.0, 64, inline_seconds=0.002)
    runner = ThreadRecorder(0.0)
    alone = DynamicBatcher(runner, settings, ServerMetrics.create(), ("test", "1"))
    alone.start()
    for start in range(5):
        await alone.submit(rows(start, 1))
    await alone.close()
    assert threading.get_ident() not in runner.threads
    assert not any(await bursts(ThreadRecorder(0.01), inline_seconds=0.002))
    assert not any(await bursts(ThreadRecorder(0.0), inline_seconds=0.0))


class RecordedBatches:
    """What the batcher hands a tracer (``server.tracing.spans.Tracing.record_batch``), kept."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[FinishedBatch] = []
        self.fail = fail

    def record_batch(self, batch: FinishedBatch) -> None:
        self.batches.append(batch)
        if self.fail:
            raise RuntimeError("the exporter is broken")


async def submit_as(
    subject: DynamicBatcher, trace: CallTrace | None, inputs: np.ndarray
) -> np.ndarray:
    """A submit from a task whose call is ``trace`` (as ``observe_call`` leaves it)."""
    CURRENT_CALL.set(trace)
    return (await subject.submit(inputs)).outputs


async def test_traced_requests_get_their_batch_recorded_with_its_instants() -> None:
    runner = RecordingRunner(delay=0.01)
    subject = batcher(runner, max_batch_size=64, max_queue_delay=0.05, max_queue_rows=256)
    recorder = RecordedBatches()
    first, second = CallTrace("call-1", recorder), CallTrace("call-2", recorder)
    await prime(subject, 3)
    assert recorder.batches == []  # untraced batches cost the tracer nothing
    outputs = await asyncio.gather(
        submit_as(subject, first, rows(0, 2)),
        submit_as(subject, None, rows(2, 1)),
        submit_as(subject, second, rows(3, 3)),
    )
    assert [len(part) for part in outputs] == [2, 1, 3]
    [batch] = recorder.batches
    assert batch.labels == ("test", "1")
    assert [(call.trace, call.rows) for call in batch.calls] == [(first, 2), (second, 3)]
    assert batch.rows == 6
    assert batch.formed <= batch.started < batch.started + batch.computing <= batch.finished
    assert batch.computing >= 0.01  # the runner's own time
    assert all(call.enqueued <= batch.formed for call in batch.calls)
    assert batch.failure is None
    await subject.close()


async def test_a_failing_tracer_never_fails_the_calls() -> None:
    subject = batcher(RecordingRunner(), max_batch_size=8, max_queue_delay=0.0, max_queue_rows=64)
    broken = CallTrace("call", RecordedBatches(fail=True))
    for start in range(3):  # the batcher outlives each failure
        outputs = await submit_as(subject, broken, rows(start, 1))
        np.testing.assert_array_equal(outputs, rows(start, 1) * 2)
    await subject.close()
