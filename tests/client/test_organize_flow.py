"""``organize``'s flow control: the gate that holds a stream's audio behind the server's answers
(waited on from another thread, as gRPC's request thread does), a whole run's streams kept
within it, and the throttle on streams in flight."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Generator, Iterable
from pathlib import Path

import pytest

from client.organize.flow import GROW_AFTER, AnswerGate, Interrupted, Throttle
from client.results import StreamUpdate
from tests.client.test_organize_runs import (
    HOP_SECONDS,
    WINDOW_SECONDS,
    FakeStreams,
    run,
    write_level,
)


def send_in_thread(gate: AnswerGate, up_to: float) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def send() -> None:
        try:
            gate.wait_to_send(up_to)
            outcome.append("sent")
        except Interrupted as error:
            outcome.append(error)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread, outcome


def test_without_a_lead_nothing_waits() -> None:
    AnswerGate(None, threading.Event()).wait_to_send(3600.0)


def test_audio_waits_until_the_answers_come_within_the_lead() -> None:
    gate = AnswerGate(4.5, threading.Event())
    gate.wait_to_send(4.5)  # the first window and a hop may go before any answer
    thread, outcome = send_in_thread(gate, 9.0)
    time.sleep(0.3)
    assert outcome == []  # 9 s is 4.5 s past the last answer (none)
    gate.answered(3.0)
    time.sleep(0.3)
    assert outcome == []  # 6 s past
    gate.answered(4.5)
    thread.join(timeout=5)
    assert outcome == ["sent"]
    gate.answered(1.0)  # answers never move back
    gate.wait_to_send(9.0)


def test_the_end_of_the_call_releases_and_a_stop_interrupts() -> None:
    gate = AnswerGate(1.0, threading.Event())
    thread, outcome = send_in_thread(gate, 60.0)
    gate.finish()
    thread.join(timeout=5)
    assert outcome == ["sent"]

    stop = threading.Event()
    stopped = AnswerGate(1.0, stop)
    thread, outcome = send_in_thread(stopped, 60.0)
    time.sleep(0.2)
    stop.set()
    thread.join(timeout=5)
    assert len(outcome) == 1
    assert isinstance(outcome[0], Interrupted)
    with pytest.raises(Interrupted):
        stopped.wait_to_send(60.0)


class CountingFake(FakeStreams):
    """Records how many chunks had been read when the client saw each window answer."""

    def __init__(self) -> None:
        super().__init__()
        self.read_at_answers: list[tuple[float, int]] = []

    def _update_seen(self, update: StreamUpdate) -> StreamUpdate:
        with self._lock:
            self.read_at_answers.append((update.window_end, self.chunks_read))
        return update

    def _answer(
        self, chunks: Iterable[bytes], sample_rate: int, channels: int
    ) -> Generator[StreamUpdate, None, None]:
        for update in super()._answer(chunks, sample_rate, channels):
            time.sleep(0.01)  # a server takes a moment per window
            yield self._update_seen(update)


def test_streams_run_ahead_of_their_answers_by_a_window_and_a_hop_at_most(tmp_path: Path) -> None:
    library = tmp_path / "music"
    write_level(library / "long.wav", 0.3, seconds=12.0)
    fake = CountingFake()
    summary = run(fake, library, tmp_path / "out", jobs=1)
    assert summary["tracks"] == {"metal": 1}
    windows = [(end, read) for end, read in fake.read_at_answers if end < 12.0]
    assert len(windows) == 22  # 1-s windows every 0.5 s over 12 s
    # The client sends 1-s chunks up to a window and a hop (1.5 s) past its last answer, so
    # when the answer for a window ending at t arrives, at most t + 1.5 s (rounded up to whole
    # chunks) has been read; flat out, all 12 chunks would be read before the first answer.
    for end, read in windows:
        assert read <= math.ceil(end + WINDOW_SECONDS + HOP_SECONDS), (end, read)


def test_throttle_backs_off_on_refusals_and_grows_back() -> None:
    stop = threading.Event()
    throttle = Throttle(3)
    assert [throttle.acquire(stop) for _ in range(3)] == [True, True, True]
    throttle.release(refused=True)
    throttle.release(refused=True)
    assert throttle.limit == 1
    throttle.release(refused=False)  # the last of the three
    assert throttle.acquire(stop)
    stop.set()
    assert throttle.acquire(stop) is False  # full, and the run stopped: no slot, no hang
    stop.clear()
    throttle.release(refused=False)  # two unrefused at limit 1 so far

    def unrefused(count: int) -> None:
        for _ in range(count):
            assert throttle.acquire(stop)
            throttle.release(refused=False)

    unrefused(GROW_AFTER * 1 - 3)
    assert throttle.limit == 1
    unrefused(1)
    assert throttle.limit == 2  # GROW_AFTER unrefused streams per slot earn one more slot
    unrefused(GROW_AFTER * 2 - 1)
    assert throttle.limit == 2
    unrefused(1)
    assert throttle.limit == 3
    unrefused(GROW_AFTER * 3 * 2)
    assert throttle.limit == 3  # never past --jobs
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        Throttle(0)
