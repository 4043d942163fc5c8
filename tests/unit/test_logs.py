"""The server's background log writer: order kept, memory bounded when stderr stops draining."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest

from server.logs import BackgroundStderr


class StuckPipe:
    """A stderr whose first write blocks until released, like a pipe nobody reads."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.text: list[str] = []

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait(10)
        self.text.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_lines_are_dropped_and_counted_while_stderr_is_stuck(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipe = StuckPipe()
    monkeypatch.setattr(sys, "stderr", pipe)
    writer = BackgroundStderr(max_lines=3)
    writer.write("first\n")
    assert pipe.entered.wait(5)  # the writer thread is now blocked inside write()
    time.sleep(0.05)
    for number in range(5):
        writer.write(f"line {number}\n")
    assert writer.dropped == 2  # three fit in the queue, two did not
    pipe.release.set()
    writer.close()
    written = "".join(pipe.text).splitlines()
    assert written[:4] == ["first", "line 0", "line 1", "line 2"]
    assert json.loads(written[4]) == {"event": "log_lines_dropped", "count": 2}
