"""Whether this process is already late: recent window latencies and event-loop lag.

Admission by measured model capacity (``server.streaming.admission``) sees only the model. A
process can
run out of something else first: on an H200 the CNN-LSTM scores 30,000 windows/s offline, yet
1,024 live streams (443 windows/s) on one process had a p99 window latency of 535 ms, the event
loop the limit (``bench/results/workers-gpu-h200``). So admission also looks at what the
admitted streams get: the p99 of the window latencies of the last ``horizon`` seconds, plus the
event loop's median lag over the same time (a saturated loop reads chunks late, which window
latency alone would not count; the median, so one garbage-collection pause refuses nothing).
Past the latency bound, new streams are refused: what is admitted then is already late, and each
new stream would make it later. The capacity share keeps the headroom below the bound; this
guard stops the slide past it.

This is feedback, not a forecast: a burst of new streams that arrives faster than their first
windows complete is admitted before any latency shows (``GENRE_MAX_STREAMS`` bounds that).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable

from prometheus_client import Gauge

RECENT_SAMPLES = 512  # the newest window latencies kept; p99 of 512 rests on its 6 worst
HORIZON_SECONDS = 2.0
LAG_SAMPLE_SECONDS = 0.1


class Lateness:
    def __init__(
        self,
        horizon_seconds: float = HORIZON_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.horizon_seconds = horizon_seconds
        self._clock = clock
        self._latencies: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=RECENT_SAMPLES
        )
        self._lags: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=round(horizon_seconds / LAG_SAMPLE_SECONDS) + 1
        )

    def observe_window(self, seconds: float) -> None:
        self._latencies.append((self._clock(), seconds))

    def observe_lag(self, seconds: float) -> None:
        self._lags.append((self._clock(), seconds))

    def late_by(self) -> tuple[float, float]:
        """(p99 of the recent window latencies, median recent loop lag), in seconds."""
        since = self._clock() - self.horizon_seconds
        return (
            _quantile([value for at, value in self._latencies if at >= since], 0.99),
            _quantile([value for at, value in self._lags if at >= since], 0.5),
        )

    async def sample_loop_lag(self, gauge: Gauge) -> None:
        """Runs for the life of the server: how late a 0.1-s sleep wakes is the loop's lag."""
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + LAG_SAMPLE_SECONDS
            await asyncio.sleep(LAG_SAMPLE_SECONDS)
            lag = max(0.0, loop.time() - expected)
            self.observe_lag(lag)
            gauge.set(lag)


def _quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile by rank (0 for no values): cheap on a few hundred samples."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
