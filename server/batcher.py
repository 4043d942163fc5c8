"""An asyncio-native dynamic batcher: many callers' rows, one forward pass.

Callers ``submit`` arrays of rows; one task per batcher collects queued work until the batch holds
``max_batch_size`` rows, or as many requests as were recently outstanding at once, or the oldest
waiting request has waited ``max_queue_delay`` seconds. It then concatenates the batch, runs the
runner once in a dedicated worker thread (so the event loop keeps serving; a very short pass may
run on the loop's own thread, ``server.compute.site``), and hands each caller its own slice in
order. While a batch computes, new work queues up, so load itself grows the
batches. The queue is bounded in rows: past the bound a caller fails at once with
RESOURCE_EXHAUSTED rather than waiting in a queue that cannot drain in time. Work whose deadline
has passed, or whose caller went away, never reaches the model.

Waiting for company only pays when company is coming. A lone closed-loop caller would wait the
whole delay for nothing, so the batcher waits only while fewer requests are queued than were
outstanding together in the last second or two (``RecentPeak``): a single caller is served at
once, eight concurrent callers are gathered into one batch.

A traced call's request (``server.tracing.context``) gets its queue, batch and inference spans
once its batch is done, from instants the batcher notes anyway.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from server.compute.site import ComputeSite
from server.config import ServerConfig
from server.errors import DeadlineExpired, Draining, Overloaded
from server.logs import get_logger
from server.metrics import ServerMetrics
from server.tracing.context import CURRENT_CALL, CallTrace, FinishedBatch, QueuedCall

log = get_logger("server.batcher")
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class BatcherSettings:
    """One kind of model's batching limits; the values come from ``ServerConfig`` alone."""

    max_batch_size: int
    max_queue_delay: float  # seconds
    max_queue_rows: int
    inline_seconds: float = 0.0  # a batch expected to compute faster runs on the loop's thread

    def __post_init__(self) -> None:
        if self.max_batch_size <= 0 or self.max_queue_rows < self.max_batch_size:
            raise ValueError("need 0 < max_batch_size <= max_queue_rows")
        if self.max_queue_delay < 0 or self.inline_seconds < 0:
            raise ValueError("max_queue_delay and inline_seconds must not be negative")

    @classmethod
    def per_kind(cls, config: ServerConfig) -> dict[str, BatcherSettings]:
        """Rows for feature models, windows for audio models, one queue delay for both."""
        delay, inline = config.max_queue_delay_ms / 1000.0, config.inline_batch_ms / 1000.0
        return {
            "features": cls(config.max_batch_size, delay, config.max_queue_rows, inline),
            "audio": cls(
                config.audio_max_batch_size, delay, config.audio_max_queue_windows, inline
            ),
        }


class RecentPeak:
    """The highest value observed in the current and the previous window of ``window`` seconds."""

    def __init__(self, window: float = 1.0) -> None:
        self._window = window
        self._started = time.monotonic()
        self._current = 0
        self._previous = 0

    def observe(self, value: int) -> None:
        self._roll()
        self._current = max(self._current, value)

    def peak(self) -> int:
        self._roll()
        return max(self._current, self._previous)

    def _roll(self) -> None:
        elapsed = time.monotonic() - self._started
        if elapsed >= self._window:
            self._previous = self._current if elapsed < 2 * self._window else 0
            self._current = 0
            self._started = time.monotonic()


@dataclass(frozen=True)
class BatchResult:
    """A caller's outputs and how they were produced (for its log line)."""

    outputs: FloatArray
    batch_rows: int
    queue_seconds: float


Delivery = Callable[[BatchResult | BaseException], None]


@dataclass
class _Pending:
    """A queued request: its outputs go to ``future`` (an awaiting caller) or, for the
    inference process's requests, straight to ``deliver``, called synchronously when its batch
    is done (no future and no scheduled callback per request)."""

    inputs: FloatArray
    future: asyncio.Future[BatchResult] | None
    deadline: float | None
    deliver: Delivery | None = None
    trace: CallTrace | None = None
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def abandoned(self) -> bool:
        """The caller was cancelled while its request waited."""
        return self.future is not None and self.future.done()

    def resolve(self, outcome: BatchResult | BaseException) -> None:
        if self.deliver is not None:
            self.deliver(outcome)
        elif self.future is not None and not self.future.done():
            if isinstance(outcome, BaseException):
                self.future.set_exception(outcome)
            else:
                self.future.set_result(outcome)

    @property
    def rows(self) -> int:
        return int(self.inputs.shape[0])


class DynamicBatcher:
    """One per served model version. ``start()`` inside a running loop, ``close()`` to drain."""

    def __init__(
        self,
        run: Callable[[FloatArray], FloatArray],
        settings: BatcherSettings,
        metrics: ServerMetrics,
        labels: tuple[str, str],
    ) -> None:
        self._run = run
        self._settings = settings
        self._labels = labels
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued_rows = 0
        self._work_arrived = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._site = ComputeSite(run, settings.inline_seconds, f"infer-{labels[0]}")
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # children bound once: ``labels()`` validates and locks on every call (~3 µs each)
        self._queue_gauge = metrics.queue_rows.labels(*labels)
        self._queue_time = metrics.queue_time.labels(*labels)
        self._compute_time = metrics.compute_time.labels(*labels)
        self._batch_size = metrics.batch_size.labels(*labels)
        self._inferred_rows = metrics.inferred_rows.labels(*labels)
        self._batch_executions = metrics.batch_executions.labels(*labels)
        self._outstanding = 0
        self._recent_peak = RecentPeak()
        self._expected_requests = 1

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._serve_forever(), name=f"batcher-{self._labels[0]}-{self._labels[1]}"
            )

    async def submit(self, inputs: FloatArray, deadline: float | None = None) -> BatchResult:
        """Queues ``inputs`` (N, ...) and waits for their outputs (N, C).

        ``deadline`` is a ``time.monotonic()`` instant after which the work is worthless (the
        clock is the system's, so an instant from another process on this host means the same).
        """
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        self.enqueue(inputs, deadline, future=future, trace=CURRENT_CALL.get())
        try:
            return await future
        finally:  # outstanding until the caller has its answer in hand (see _settled)
            self._outstanding -= 1

    def enqueue(
        self,
        inputs: FloatArray,
        deadline: float | None = None,
        *,
        future: asyncio.Future[BatchResult] | None = None,
        deliver: Delivery | None = None,
        trace: CallTrace | None = None,
    ) -> None:
        """``submit`` without the wait: the outputs go to ``future`` or to ``deliver``. The
        inference process (``server.inference``) queues a whole message of requests this way
        and answers each from ``deliver``, with no task or future per request. Refusals raise
        here, at once."""
        if self._closing:
            raise Draining("the server is shutting down; retry on another replica")
        rows = int(inputs.shape[0])
        if self._queued_rows + rows > self._settings.max_queue_rows:
            raise Overloaded(
                f"model {self._labels[0]} version {self._labels[1]} has "
                f"{self._queued_rows} rows queued "
                f"(limit {self._settings.max_queue_rows}); retry later"
            )
        if deadline is not None and deadline <= time.monotonic():
            raise DeadlineExpired("the deadline passed before the request was queued")
        self._queue.append(_Pending(inputs, future, deadline, deliver, trace))
        self._queued_rows += rows
        self._queue_gauge.set(self._queued_rows)
        self._outstanding += 1
        self._recent_peak.observe(self._outstanding)
        self._work_arrived.set()
        if (
            self._queued_rows >= self._settings.max_batch_size
            or len(self._queue) >= self._expected_requests
        ):
            self._batch_full.set()

    async def close(self) -> None:
        """Refuses new work, finishes what is queued, then stops the worker."""
        self._closing = True
        self._work_arrived.set()
        if self._task is not None:
            await self._task
        self._site.close()

    async def _serve_forever(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._work_arrived.clear()
                await self._work_arrived.wait()
                continue
            await self._wait_for_fill()
            batch = self._take_batch()
            if batch:
                await self._execute(batch)

    async def _wait_for_fill(self) -> None:
        """Waits for company only while more requests were recently outstanding than queued."""
        self._expected_requests = self._recent_peak.peak()
        if (
            self._queued_rows >= self._settings.max_batch_size
            or len(self._queue) >= self._expected_requests
            or self._closing
        ):
            return
        remaining = self._queue[0].enqueued + self._settings.max_queue_delay - time.monotonic()
        if remaining <= 0:
            return
        self._batch_full.clear()
        with contextlib.suppress(TimeoutError):  # a timer, not wait_for's task per batch
            async with asyncio.timeout(remaining):
                await self._batch_full.wait()

    def _settled(self, pending: _Pending) -> None:
        """A request counts as outstanding (company for the batches to come) until its caller
        holds the answer: a delivery callback has it once called; an awaiting caller once its
        task has resumed, in ``submit``, a loop pass or more later, so calls that arrive
        meanwhile still see it."""
        if pending.deliver is not None:
            self._outstanding -= 1

    def _take_batch(self) -> list[_Pending]:
        """Pops whole requests up to max_batch_size rows (a larger request runs alone)."""
        batch: list[_Pending] = []
        rows = 0
        now = time.monotonic()
        while self._queue:
            pending = self._queue[0]
            if batch and rows + pending.rows > self._settings.max_batch_size:
                break
            self._queue.popleft()
            self._queued_rows -= pending.rows
            if pending.abandoned:  # its caller's submit() counted it out when cancelled
                continue
            if pending.deadline is not None and pending.deadline <= now:
                pending.resolve(DeadlineExpired("the deadline passed while the request was queued"))
                self._settled(pending)
                continue
            batch.append(pending)
            rows += pending.rows
        self._queue_gauge.set(self._queued_rows)
        return batch

    async def _execute(self, batch: list[_Pending]) -> None:
        formed = time.monotonic()
        inputs = batch[0].inputs if len(batch) == 1 else np.concatenate([p.inputs for p in batch])
        rows = int(inputs.shape[0])
        started = time.monotonic()
        traced: list[QueuedCall] | None = None
        for pending in batch:
            self._queue_time.observe(started - pending.enqueued)
            if pending.trace is not None:
                traced = traced or []
                traced.append(QueuedCall(pending.trace, pending.enqueued, pending.rows))
        computing = 0.0
        try:
            company = self._expected_requests > 1
            outputs, computing = await self._site.compute(inputs, company, self._queue.__len__)
            if outputs.shape[0] != rows:
                raise RuntimeError(f"runner returned {outputs.shape[0]} outputs for {rows} rows")
        except Exception as error:  # every caller of the batch learns of the failure
            for pending in batch:
                pending.resolve(error)
                self._settled(pending)
            if traced is not None:
                self._trace(FinishedBatch(self._labels, traced, rows, formed, started), error)
            return
        finally:
            self._compute_time.observe(time.monotonic() - started)
        self._batch_size.observe(rows)
        self._inferred_rows.inc(rows)
        self._batch_executions.inc()
        offset = 0
        for pending in batch:
            part = outputs[offset : offset + pending.rows]
            offset += pending.rows
            pending.resolve(
                BatchResult(part, batch_rows=rows, queue_seconds=started - pending.enqueued)
            )
            self._settled(pending)
        if traced is not None:
            self._trace(FinishedBatch(self._labels, traced, rows, formed, started, computing))

    def _trace(self, batch: FinishedBatch, failure: Exception | None = None) -> None:
        """The batch's spans, once its callers are answered: a tracer's failure is logged,
        never theirs."""
        done = batch._replace(finished=time.monotonic(), failure=failure)
        try:
            batch.calls[0].trace.spans.record_batch(done)
        except Exception:
            log.exception("batch_spans_failed", model=self._labels[0], version=self._labels[1])
