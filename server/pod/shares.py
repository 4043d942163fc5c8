"""Per-worker counts in shared memory that add up to the pod's: open streams and stream load.

The kernel deals connections, not streams, over the workers, and unevenly: with the stream limit
counted per worker, a flood of 2,048 streams over eight workers found only 1,792 slots, because
the workers that drew more connections were full while others had room. So each worker writes
its own count into one slot of an array the supervisor made before spawning them, and admits a
stream while the pod's sum is under the pod's limit (the per-worker limit times the workers).
Only the owner writes a slot, so no lock is needed; two workers admitting at the same instant can
overshoot by one each, which the limit's purpose (bounding memory and work) tolerates. A slot of
a worker that died is cleared by the supervisor.

The same holds for stream load when the workers share one inference process: its measured
capacity is the pod's, so the shares every worker admitted add up against one limit.
"""

from __future__ import annotations

from collections.abc import MutableSequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PodShares:
    """``index``: this worker's slot; ``streams`` and ``load``: one slot per worker."""

    index: int
    streams: MutableSequence[int]  # a multiprocessing RawArray("i", workers)
    load: MutableSequence[float]  # a multiprocessing RawArray("d", workers)

    @property
    def workers(self) -> int:
        return len(self.streams)

    def open_streams(self) -> int:
        return sum(self.streams)

    def set_streams(self, count: int) -> None:
        self.streams[self.index] = count

    def total_load(self) -> float:
        return sum(self.load)

    def set_load(self, value: float) -> None:
        self.load[self.index] = value

    def clear(self, index: int) -> None:
        """The supervisor's: a dead worker holds nothing."""
        self.streams[index] = 0
        self.load[index] = 0.0
