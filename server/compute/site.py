"""Where a batch computes: on the event loop's own thread, or on the version's inference thread.

Handing a batch to the inference thread and its result back costs a thread wake-up, a wake of
the loop and the GIL crossing twice, which for a batch that computes in well under a
millisecond (a feature model's few rows) is most of the batch. Such a batch may run on the
loop's own thread instead (``GENRE_INLINE_BATCH_MS``; 0, the default, until a quiet benchmark
shows it pays: docs/benchmarks.md). The loop is held for at most about that long: a batch goes
inline only while recent batches computed faster, only if it holds no more than twice their
rows, and only while callers come together (the batcher expects company). A lone caller, a
sudden large request, a version's first batch, the audio ensemble's passes and 256-row batches
go to the thread, so health and other calls never wait on a long pass, and a burst is seen
arriving before its first batch is taken.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
ARRIVAL_PASSES = 16  # loop passes an inline batch yields at most for calls still arriving
ARRIVAL_WAIT = 0.0001  # seconds the loop sleeps after an inline batch, for gRPC's poller thread


class ComputeSite:
    """``run`` ((N, ...) -> (N, C)) on the right thread, learning how long its batches take."""

    def __init__(
        self, run: Callable[[FloatArray], FloatArray], inline_seconds: float, thread_name: str
    ) -> None:
        self._run = run
        self._inline_seconds = inline_seconds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._batch_seconds: float | None = None  # what batches computed for, smoothed
        self._batch_rows = 0.0  # and how many rows they held

    async def compute(
        self, inputs: FloatArray, company: bool, queued: Callable[[], int]
    ) -> tuple[FloatArray, float]:
        """The outputs and the seconds the runner computed. ``company``: the batcher expects
        concurrent callers; ``queued``: how many requests wait (an inline batch lets the ones
        that arrived meanwhile reach the queue before the next batch is taken)."""
        rows = int(inputs.shape[0])
        if company and self._fast(rows):
            outputs, seconds = self._timed_run(inputs)
            await self._let_arrivals_queue(queued)
        else:
            outputs, seconds = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._timed_run, inputs
            )
        self._learn(seconds, rows)
        return outputs, seconds

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _fast(self, rows: int) -> bool:
        expected = self._batch_seconds
        return (
            expected is not None
            and expected < self._inline_seconds
            and rows <= 2 * self._batch_rows
        )

    def _timed_run(self, inputs: FloatArray) -> tuple[FloatArray, float]:
        """The runner's outputs and how long it computed, without any hand-off between threads
        (what a batch would hold the loop for, were it inline)."""
        started = time.perf_counter()
        outputs = self._run(inputs)
        return outputs, time.perf_counter() - started

    def _learn(self, seconds: float, rows: int) -> None:
        if self._batch_seconds is None:
            self._batch_seconds, self._batch_rows = seconds, float(rows)
            return
        self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * seconds
        self._batch_rows = 0.8 * self._batch_rows + 0.2 * rows

    @staticmethod
    async def _let_arrivals_queue(queued: Callable[[], int]) -> None:
        """After an inline batch: lets the calls that arrived while it held the loop reach the
        queue, so they are counted as company (the recent peak) and batched together, as they
        are while a pass runs on the thread. gRPC's poller thread hands arrivals to the loop
        and needs the GIL to do it, so the loop first sleeps for ``ARRIVAL_WAIT`` (its select
        lets go of the GIL), then yields until two passes bring no new call (at most
        ``ARRIVAL_PASSES``)."""
        await asyncio.sleep(ARRIVAL_WAIT)
        quiet = 0
        for _ in range(ARRIVAL_PASSES):
            waiting = queued()
            await asyncio.sleep(0)
            quiet = quiet + 1 if queued() == waiting else 0
            if quiet == 2:
                return
