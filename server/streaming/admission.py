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

Capacity is what the model measured in this process; what else the process runs short of (its
event loop, a GPU shared with other workers) shows as lateness, which refuses new streams too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from server.errors import Overloaded
from server.metrics import ServerMetrics
from server.pod.shares import PodShares
from server.streaming.lateness import Lateness
from server.streaming.session import StreamLimits, StreamPlan, StreamSlots


class StreamAdmission:
    """Admits streams while their summed share of audio capacity stays within ``limit`` and the
    streams already open are not late (``server.streaming.lateness``; ``latency_bound`` 0 turns
    it off)."""

    def __init__(
        self,
        limit: float,
        override: float,
        metrics: ServerMetrics,
        lateness: Lateness | None = None,
        latency_bound: float = 0.0,
        shares: PodShares | None = None,
    ) -> None:
        """``shares``: the workers feed one inference process, whose capacity is the pod's, so
        the load every worker admitted counts against the limit (``server.pod.shares``)."""
        self._limit = limit
        self._override = override
        self._shares = shares
        self._load = 0.0
        self._gauge = metrics.stream_load
        self._lateness = lateness
        self._latency_bound = latency_bound

    def share(self, plan: StreamPlan) -> float:
        """The fraction of its version's capacity one stream of ``plan`` asks for."""
        capacity = self._override or plan.audio.windows_per_second
        return (plan.sample_rate / plan.hop_samples) / capacity

    def refuse_if_late(self) -> None:
        if self._lateness is None or self._latency_bound <= 0:
            return
        p99, lag = self._lateness.late_by()
        if p99 + lag > self._latency_bound:
            raise Overloaded(
                f"config: streams on this server are already late (window latency p99 "
                f"{p99 * 1000:.0f} ms plus event-loop lag {lag * 1000:.0f} ms over the last "
                f"{self._lateness.horizon_seconds:g} s, past "
                f"GENRE_STREAM_LATENCY_BOUND_MS={self._latency_bound * 1000:g}); retry later "
                "or on another replica"
            )

    @contextlib.contextmanager
    def admit(self, plan: StreamPlan) -> Iterator[None]:
        self.refuse_if_late()
        if self._limit <= 0:
            yield
            return
        share = self.share(plan)
        load = self._load if self._shares is None else self._shares.total_load()
        if load + share > self._limit + 1e-9:
            raise Overloaded(
                f"config.hop_seconds: the audio models are at capacity: open streams ask "
                f"{load:.2f} of what they measured they can score, this stream "
                f"{share:.3f} more, and the limit is {self._limit:g} "
                "(GENRE_STREAM_ADMISSION_LOAD); retry later or with a longer hop"
            )
        self._set_load(self._load + share)
        try:
            yield
        finally:
            self._set_load(max(0.0, self._load - share))

    def _set_load(self, value: float) -> None:
        self._load = value
        self._gauge.set(value)
        if self._shares is not None:
            self._shares.set_load(value)


@dataclass(frozen=True)
class StreamResources:
    """What every live stream shares, whichever protocol opened it: genre.v1's
    ``ClassifyAudioStream`` and the Open Inference Protocol's sequences count against the same
    limits, slots, capacity and lateness."""

    limits: StreamLimits
    slots: StreamSlots
    admission: StreamAdmission
    lateness: Lateness | None
