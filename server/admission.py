"""Stream admission by capacity: a stream is let in only while the audio models can keep every
admitted stream real time.

Each open stream asks for ``1 / hop`` windows a second of its model version; each version
measured, when it loaded, how many windows a second it can score (``AudioRunner.warm_up``, or
``GENRE_AUDIO_WINDOWS_PER_SECOND``). A stream takes that share of the machine; the shares of all
open streams, over every audio version (they share the cores or the GPU), may add up to at most
``GENRE_STREAM_ADMISSION_LOAD`` (default 0.5). Past it a new stream gets RESOURCE_EXHAUSTED at
its config, before any audio, and the admitted ones keep their latency. Why 0.5 and not 1: the
windows of independent streams complete at random moments and queue behind each other, and a
window waits behind several others' service times. On the 2-core machine the ensemble (about
45 ms a window) gave p99 of 226 and 280 ms in two runs of 16 random-phase streams (a load of
0.49) and 430 ms with 24 (0.73); ``bench/results/ensemble-cpu/``. A model with a shorter
service time (the CNN-LSTM alone, or any model on a GPU) keeps p99 far lower at the same load.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from server.errors import Overloaded
from server.metrics import ServerMetrics
from server.streams import StreamPlan


class StreamAdmission:
    """Admits streams while their summed share of audio capacity stays within ``limit``."""

    def __init__(self, limit: float, override: float, metrics: ServerMetrics) -> None:
        self._limit = limit
        self._override = override
        self._load = 0.0
        self._gauge = metrics.stream_load

    def share(self, plan: StreamPlan) -> float:
        """The fraction of its version's capacity one stream of ``plan`` asks for."""
        capacity = self._override or plan.runner.windows_per_second
        return (plan.sample_rate / plan.hop_samples) / capacity

    @contextlib.contextmanager
    def admit(self, plan: StreamPlan) -> Iterator[None]:
        if self._limit <= 0:
            yield
            return
        share = self.share(plan)
        if self._load + share > self._limit + 1e-9:
            raise Overloaded(
                f"config.hop_seconds: the audio models are at capacity: open streams ask "
                f"{self._load:.2f} of what they measured they can score, this stream "
                f"{share:.3f} more, and the limit is {self._limit:g} "
                "(GENRE_STREAM_ADMISSION_LOAD); retry later or with a longer hop"
            )
        self._load += share
        self._gauge.set(self._load)
        try:
            yield
        finally:
            self._load = max(0.0, self._load - share)
            self._gauge.set(self._load)
