"""Every worker's readiness in one shared array, so any worker's health answers for the pod.

With several processes on one port, a health check reaches whichever worker the kernel gives its
connection to. Readiness must not depend on that draw: a pod is ready only while every worker is,
because a caller's connection may land on the one that is still loading. Each worker writes its
own slot; the supervisor clears the slot of a worker that died. The array lives in shared memory
made by the supervisor before it spawns the workers (``multiprocessing`` passes it at spawn).
"""

from __future__ import annotations

import enum
from collections.abc import MutableSequence
from dataclasses import dataclass

from server.pod.shares import PodShares


class WorkerState(enum.IntEnum):
    STARTING = 0  # spawned, importing, or loading its first table; or dead, or draining
    LOADED = 1  # first load pass over, not every configured model ready
    READY = 2  # every configured model's default loaded and warm
    SERVING = 3  # ready, and its health says SERVING: it saw every other worker ready too


@dataclass(frozen=True)
class ReadinessBoard:
    slots: MutableSequence[int]  # a multiprocessing RawArray("b", workers)

    def publish(self, index: int, state: WorkerState) -> None:
        self.slots[index] = int(state)

    def state(self, index: int) -> WorkerState:
        return WorkerState(self.slots[index])

    def all_ready(self) -> bool:
        return all(value >= WorkerState.READY for value in self.slots)

    def others_ready(self, index: int) -> bool:
        return all(value >= WorkerState.READY for i, value in enumerate(self.slots) if i != index)

    def all_serving(self) -> bool:
        return all(value == WorkerState.SERVING for value in self.slots)

    def all_loaded(self) -> bool:
        return all(value >= WorkerState.LOADED for value in self.slots)

    def count_ready(self) -> int:
        return sum(1 for value in self.slots if value >= WorkerState.READY)


@dataclass(frozen=True)
class WorkerRole:
    """What a worker process is told by its supervisor: who it is, and where the others stand."""

    index: int
    board: ReadinessBoard
    parent_pid: int
    # The inference process's socket when this worker is a front-end feeding it
    # (``GENRE_INFERENCE_PROCESS``); empty when the worker holds its own models.
    inference_socket: str = ""
    shares: PodShares | None = None  # the pod's stream counts
