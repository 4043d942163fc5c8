"""The readiness board: a worker is SERVING only once every other worker is ready too."""

from __future__ import annotations

import multiprocessing

from server.pod.readiness import ReadinessBoard, WorkerState


def board(*states: WorkerState) -> ReadinessBoard:
    slots = multiprocessing.get_context("spawn").RawArray("b", len(states))
    for index, state in enumerate(states):
        slots[index] = int(state)
    return ReadinessBoard(slots)


def test_others_ready_ignores_the_asking_worker() -> None:
    shared = board(WorkerState.LOADED, WorkerState.READY, WorkerState.SERVING)
    assert shared.others_ready(0)
    assert not shared.others_ready(1)
    assert not shared.all_ready()


def test_loaded_ready_and_serving_are_counted_apart() -> None:
    shared = board(WorkerState.SERVING, WorkerState.READY, WorkerState.STARTING)
    assert not shared.all_loaded()
    assert shared.count_ready() == 2
    shared.publish(2, WorkerState.SERVING)
    assert shared.all_loaded()
    assert shared.all_ready()
    assert not shared.all_serving()
    shared.publish(1, WorkerState.SERVING)
    assert shared.all_serving()
    assert shared.state(1) is WorkerState.SERVING
