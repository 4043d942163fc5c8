"""How many CPUs this process may really use, and the worker and thread defaults made of it.

``os.cpu_count()`` counts the node's cores. In a Kubernetes pod with a 2-CPU limit on a 64-core
node it says 64, and "one worker per core" would start 64 processes that the CFS quota then
throttles. So the count is the smaller of the CPU affinity mask and the cgroup quota (v2
``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), rounded up.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Past 8, each process's own memory (torch, the models, a CUDA context on a GPU) outweighs what
# another event loop adds; an operator who measured otherwise sets GENRE_WORKERS.
MAX_DEFAULT_WORKERS = 8
MAX_DEFAULT_THREADS = 4


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs the cgroup quota allows (e.g. 1.5), or None when no quota is set or readable."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """Whole CPUs this process can use: affinity mask and cgroup quota, whichever is smaller."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    count = affinity or os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        count = min(count, max(1, math.ceil(limit)))
    return count


def default_workers(cpus: int) -> int:
    """One serving process per CPU, up to ``MAX_DEFAULT_WORKERS``."""
    return max(1, min(MAX_DEFAULT_WORKERS, cpus))


def default_torch_threads(cpus: int, workers: int) -> int:
    """Inference threads per process when the operator sets none.

    One process keeps a core for its event loop and gRPC (cores minus one). Several processes
    split the cores between them and each runs one event loop of its own, so each gets its share
    less one core, at least one thread: two workers on 2 cores run one thread each.
    """
    return max(1, min(MAX_DEFAULT_THREADS, cpus // max(1, workers) - 1))


def gpu_present(environ: dict[str, str] | None = None, dev: Path = Path("/dev")) -> bool:
    """Whether an NVIDIA GPU is visible to this process, known without importing torch (the
    supervisor never does): the driver's device files, unless CUDA_VISIBLE_DEVICES hides them.
    """
    environ = dict(os.environ) if environ is None else environ
    if environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    return (dev / "nvidiactl").exists() and any(dev.glob("nvidia[0-9]*"))


def inference_torch_threads(cpus: int, workers: int) -> int:
    """Intra-op threads of the inference process, the only one that computes when front-ends
    feed it: the cores the front-ends' event loops leave (one each), at least one."""
    return max(1, min(MAX_DEFAULT_THREADS, cpus - workers))
