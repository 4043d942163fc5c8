"""CPU seconds used by a process and its descendants, from /proc (Linux).

Throughput on a shared machine moves with whatever else runs; the CPU a server spends per call
moves much less, so the tables carry both. With several serving processes, how that CPU splits
between them shows whether the kernel's per-connection balancing gave each a share of the calls.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system seconds) of one process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def _snapshot() -> dict[int, tuple[int, float]]:
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    return stats


def _children(stats: dict[int, tuple[int, float]]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    return children


def _tree(stats: dict[int, tuple[int, float]], children: dict[int, list[int]], root: int) -> float:
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        if pid in stats:
            total += stats[pid][1]
        pending.extend(children.get(pid, ()))
    return total


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of ``root`` and every live descendant (0.0 without /proc)."""
    stats = _snapshot()
    return _tree(stats, _children(stats), root)


@dataclass(frozen=True)
class ServerCpu:
    """A server's CPU seconds so far: all of it, and each serving process's (with descendants)."""

    total: float
    processes: dict[int, float]


def server_cpu(roots: Sequence[int], workers: int) -> ServerCpu:
    """The CPU of the process trees at ``roots``.

    The serving processes are the roots themselves when there are several (N echo servers on
    one port), or the one root's direct children when it runs ``workers`` > 1 (a supervisor).
    """
    stats = _snapshot()
    children = _children(stats)
    total = sum(_tree(stats, children, root) for root in roots)
    serving = list(roots) if len(roots) > 1 or workers == 1 else children.get(roots[0], [])
    return ServerCpu(total, {pid: _tree(stats, children, pid) for pid in serving})


def process_shares(before: ServerCpu, after: ServerCpu, workers: int) -> list[float]:
    """Each serving process's part of the CPU spent between two samples, largest first.

    Only the ``workers`` busiest count, so a helper child of a supervisor (a resource tracker,
    say) that serves no calls is left out. Empty when nothing was spent or measured.
    """
    spent = sorted(
        (seconds - before.processes.get(pid, 0.0) for pid, seconds in after.processes.items()),
        reverse=True,
    )[:workers]
    whole = sum(spent)
    return [part / whole for part in spent] if whole > 0 else []
