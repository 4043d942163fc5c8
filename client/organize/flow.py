"""Flow control for ``genre-client organize``'s streams: how many run at once, and how far each
runs ahead of the server's answers.

A batch client that streams files flat out makes every window it sends late (queued behind the
rest of its file), and the server, which guards live streams, refuses new streams while recent
windows are late. So each stream holds its audio back until the answers catch up
(:class:`AnswerGate`), and the number of streams in flight backs off when the server refuses one
and grows back slowly (:class:`Throttle`).
"""

from __future__ import annotations

import threading


class Interrupted(Exception):
    """Raised into a stream's chunk source when the run is stopped (Ctrl-C)."""


GROW_AFTER = 4
"""Unrefused streams, per stream of the current limit, before the limit grows by one: slowly,
as each refusal costs a backoff and a limit that keeps probing one too high keeps paying it."""


class Throttle:
    """Streams at once: at most ``jobs``; one fewer after each refusal (RESOURCE_EXHAUSTED, never
    below one) and one more after :data:`GROW_AFTER` times the limit finish unrefused, as TCP
    grows and shrinks its window. ``--jobs`` is then a ceiling the run settles under, at what the
    server admits, rather than a rate it keeps being refused at."""

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self._ceiling = jobs
        self.limit = jobs
        self._active = 0
        self._unrefused = 0
        self._changed = threading.Condition()

    def acquire(self, stop: threading.Event) -> bool:
        """Waits for a slot; False when the run stopped meanwhile."""
        with self._changed:
            while self._active >= self.limit:
                if stop.is_set():
                    return False
                self._changed.wait(timeout=0.1)
            self._active += 1
            return True

    def release(self, refused: bool) -> None:
        with self._changed:
            self._active -= 1
            if refused:
                self.limit = max(1, self.limit - 1)
                self._unrefused = 0
            else:
                self._unrefused += 1
                if self._unrefused >= GROW_AFTER * self.limit and self.limit < self._ceiling:
                    self.limit += 1
                    self._unrefused = 0
            self._changed.notify_all()


class AnswerGate:
    """Holds a stream's audio back until the server has answered up to ``lead`` seconds behind
    it. The chunk source waits here on gRPC's thread; the caller's loop reports each answer."""

    def __init__(self, lead_seconds: float | None, stop: threading.Event) -> None:
        self._lead = lead_seconds
        self._stop = stop
        self._answered = 0.0
        self._done = False
        self._changed = threading.Condition()

    def answered(self, seconds: float) -> None:
        with self._changed:
            self._answered = max(self._answered, seconds)
            self._changed.notify_all()

    def finish(self) -> None:
        """The call is over: nothing is held back any more."""
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def wait_to_send(self, up_to_seconds: float) -> None:
        """Returns once audio up to ``up_to_seconds`` may go; raises :class:`Interrupted` when
        the run stops meanwhile."""
        if self._lead is None:
            return
        with self._changed:
            while not self._done and self._answered < up_to_seconds - self._lead:
                if self._stop.is_set():
                    raise Interrupted
                self._changed.wait(timeout=0.1)
