"""The garbage collector's settings for a serving process, applied once it has loaded.

A loaded server holds a few hundred thousand long-lived objects (torch modules, protobuf
descriptors, the registry) that every full collection walks again. Under load those pauses land
on calls: one-row ``ClassifyFeatures`` at concurrency 256 on 2 workers (two runs each,
``bench.run --servers ours --scenarios features-1 --workers 2``, 2 AMD EPYC cores) had a p99 of
161 and 228 ms as shipped, 110 and 126 ms with the startup objects frozen, and 123 and 106 ms
frozen with the thresholds below (CPU per call at c=64: 351-411 µs as shipped, 318-324 µs).
Freezing moves what exists now out of the collector's sight; a larger first threshold collects
the young generation every 50,000 allocations instead of 700, which the per-call objects (a few
dozen each) are nearly all freed by reference counting, not by the collector.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)


def settle_heap() -> None:
    """Collects what loading left behind, freezes the survivors and raises the thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
