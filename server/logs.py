"""structlog set-up: JSON lines for machines, a readable console format on a terminal.

Request-scoped fields (request id, peer) live in structlog's contextvars, bound by the
interceptor, so every line a request causes carries them. Payloads never go into a log line.
"""

from __future__ import annotations

import atexit
import collections
import datetime
import itertools
import json
import logging
import os
import sys
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, TextIO, cast

import structlog

from server.tracing.context import TRACEPARENT_KEY, TRACESTATE_KEY

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR
REQUEST_ID_KEY = "x-request-id"
MAX_ID_CHARS = 128


# Fresh request ids: this process's random prefix and a counter, as unique as uuid4 across
# processes and restarts for practical purposes, at a tenth of its cost (no urandom per call).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def request_id(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The caller's ``x-request-id`` when it sent one of 1-128 characters, else a fresh one.

    One rule for every place that answers a call (the servicer, and the auth interceptor for the
    calls it refuses before the servicer runs), so a call's log lines and its trailing metadata
    always carry the same id.
    """
    return call_metadata(metadata)[0]


def call_metadata(metadata: Iterable[tuple[str, Any]] | None) -> tuple[str, str, str]:
    """The call's request id (as ``request_id``), ``traceparent`` and ``tracestate`` ("" when
    absent), found in one pass over its metadata: every call makes this pass, so the trace
    headers cost it two string comparisons per key (``server.tracing.context``)."""
    found = traceparent = tracestate = ""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY:
            if not found and isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS:
                found = value
        elif key == TRACEPARENT_KEY:
            if not traceparent and isinstance(value, str):
                traceparent = value
        elif key == TRACESTATE_KEY and isinstance(value, str):
            tracestate = f"{tracestate},{value}" if tracestate else value
    return found or f"{_ID_PREFIX}{next(_ID_COUNTER):016x}", traceparent, tracestate


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time, so later redirection is honoured."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


class BackgroundStderr:
    """Hands lines to a writer thread, so the event loop never waits on a slow or full pipe.

    A line per request written and flushed on the loop cost about as much as the rest of a
    ClassifyFeatures call when stderr was a pipe (measured with pyinstrument). A queue with a
    condition variable then still woke the writer thread for nearly every line, and each wake-up
    took the GIL from the event loop (py-spy: about a tenth of the server's GIL time at 2,000
    calls/s). So ``write`` only appends to a deque, and the thread wakes every ``interval``
    seconds and writes whatever has gathered in one go; ``close`` (registered with atexit)
    writes the rest. The deque is bounded: when stderr stops draining, lines are dropped and
    counted (the count is written once it drains again) rather than letting memory grow.
    """

    def __init__(self, max_lines: int = 100_000, interval: float = 0.02) -> None:
        self._lines: collections.deque[str] = collections.deque()
        self._max_lines = max_lines
        self._interval = interval
        self._closing = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._drain, name="log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def write(self, text: str) -> int:
        if len(self._lines) >= self._max_lines:
            self.dropped += 1
        else:
            self._lines.append(text)  # deque appends are atomic; no lock, no wake-up
        return len(text)

    def flush(self) -> None:
        """Nothing to wait for: the writer thread flushes after every batch."""

    def isatty(self) -> bool:
        return sys.stderr.isatty()

    def close(self, timeout: float = 5.0) -> None:
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _drain(self) -> None:
        while True:
            closing = self._closing.wait(self._interval)
            self._write_pending()
            if closing:
                self._write_pending()  # lines that arrived during the last write
                return

    def _write_pending(self) -> None:
        pending = len(self._lines)
        text = "".join([self._lines.popleft() for _ in range(pending)])
        if self.dropped:
            dropped, self.dropped = self.dropped, 0
            text += f'{{"event": "log_lines_dropped", "count": {dropped}}}\n'
        if text:
            sys.stderr.write(text)
            sys.stderr.flush()


class AccessLog:
    """The one line per call, written without structlog's processor chain.

    At a few thousand calls a second per process the access line was the costliest part of a
    call's own Python: structlog's processors, a context variable bound and reset, and the
    renderer took about 20 microseconds a line. This writes the same JSON object (same keys,
    the same ISO UTC timestamp) with one ``json.dumps`` into the same output. ``sample_every``
    keeps one successful call's line in N (``GENRE_ACCESS_LOG_SAMPLE``); a failed call always
    gets its line. The console format, for people at a terminal, goes through structlog.
    """

    def __init__(self) -> None:
        self._output: Any = None
        self._fields: dict[str, object] = {}
        self._json = True
        self._enabled = True
        self._sample_every = 1
        self._count = 0

    def configure(
        self, output: Any, as_json: bool, enabled: bool, fields: Mapping[str, object], every: int
    ) -> None:
        self._output, self._json, self._enabled = output, as_json, enabled
        self._fields = {"component": "server.requests", **fields, "level": "info"}
        self._sample_every = max(1, every)

    def write(self, ok: bool, line: dict[str, object]) -> None:
        if self.wanted(ok):
            self.emit(line)

    def wanted(self, ok: bool) -> bool:
        """Whether this call gets its line (counting successful calls for the sampling), asked
        before the line is built, so a call sampled out builds nothing."""
        if not self._enabled:
            return False
        if ok and self._sample_every > 1:
            self._count += 1
            return self._count % self._sample_every == 0
        return True

    def emit(self, line: dict[str, object]) -> None:
        if not self._json or self._output is None:
            structlog.get_logger(component="server.requests").info("request", **line)
            return
        line["event"] = "request"
        line.update(self._fields)
        now = datetime.datetime.now(tz=datetime.UTC)
        line["timestamp"] = now.isoformat().replace("+00:00", "Z")
        self._output.write(json.dumps(line) + "\n")


ACCESS_LOG = AccessLog()


def sample_every(rate: float) -> int:
    """``GENRE_ACCESS_LOG_SAMPLE`` (the share of successful calls logged) as one line in N;
    0 logs none of them (a huge N)."""
    return 2**62 if rate <= 0 else max(1, round(1 / rate))


def configure_logging(
    log_format: str,
    level: str,
    stream: TextIO | None = None,
    background: bool = False,
    fields: Mapping[str, object] | None = None,
    access_sample: float = 1.0,
) -> None:
    """``log_format``: json, console, or auto (console on a terminal, JSON otherwise).

    ``background`` (the server process) writes stderr from a thread (``BackgroundStderr``).
    ``fields`` go into every line of this process: a worker's ``worker`` id, so the lines of
    several processes that share one stderr can be told apart.
    """
    output: TextIO | _CurrentStderr | BackgroundStderr
    if stream is not None:
        output = stream
    else:
        output = BackgroundStderr() if background else _CurrentStderr()
    use_console = log_format == "console" or (log_format == "auto" and output.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if use_console
        else structlog.processors.JSONRenderer()
    )
    constant = dict(fields or {})

    def add_fields(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.update(constant)
        return event

    ACCESS_LOG.configure(
        output,
        as_json=not use_console,
        enabled=_LEVELS[level] <= logging.INFO,
        fields=constant,
        every=sample_every(access_sample),
    )
    structlog.configure(
        processors=[
            add_fields,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, output)),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(component=name)
