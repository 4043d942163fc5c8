"""The server's background log writer: order kept, memory bounded when stderr stops draining."""

from __future__ import annotations

import io
import json
import sys
import threading
import time

import pytest

from server.logs import ACCESS_LOG, BackgroundStderr, configure_logging


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


def access_lines(sample: float, level: str = "info", calls: int = 8) -> list[dict[str, object]]:
    stream = io.StringIO()
    configure_logging("json", level, stream=stream, fields={"worker": 1}, access_sample=sample)
    for number in range(calls):
        ACCESS_LOG.write(True, {"method": "ClassifyFeatures", "status": "OK", "rows": number})
    ACCESS_LOG.write(False, {"method": "ClassifyFeatures", "status": "INVALID_ARGUMENT"})
    ACCESS_LOG.write(False, {"method": "ListModels", "status": "UNAVAILABLE"})
    configure_logging("json", "warning")
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_access_line_carries_the_call_and_the_process_fields() -> None:
    lines = access_lines(1.0, calls=1)
    assert lines[0]["event"] == "request"
    assert lines[0]["component"] == "server.requests"
    assert lines[0]["worker"] == 1
    assert lines[0]["level"] == "info"
    assert str(lines[0]["timestamp"]).endswith("Z")
    assert (lines[0]["method"], lines[0]["status"], lines[0]["rows"]) == (
        "ClassifyFeatures",
        "OK",
        0,
    )


def test_sampling_keeps_one_success_in_n_and_every_failure() -> None:
    lines = access_lines(0.25)
    assert [line["status"] for line in lines] == ["OK", "OK", "INVALID_ARGUMENT", "UNAVAILABLE"]
    assert [line["rows"] for line in lines[:2]] == [3, 7]
    assert [line["status"] for line in access_lines(0.0)] == ["INVALID_ARGUMENT", "UNAVAILABLE"]


def test_no_access_line_below_the_log_level() -> None:
    assert access_lines(1.0, level="warning") == []
