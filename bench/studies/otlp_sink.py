"""An OTLP/gRPC receiver in a process of its own, for benchmarks: it only counts spans.

    .venv/bin/python -m bench.studies.otlp_sink  # its port, then the span count at stdin's EOF

A benchmark points ``GENRE_OTLP_ENDPOINT`` at it, so exporting costs the server what it costs in
production (serialising, the gRPC send) while the receiving end's CPU stays out of the figures.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class CountingSink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0
        self._lock = threading.Lock()

    def Export(  # noqa: N802 -- the collector's method name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        count = sum(
            len(scope.spans) for spans in request.resource_spans for scope in spans.scope_spans
        )
        with self._lock:
            self.spans += count
        return trace_service_pb2.ExportTraceServiceResponse()


def start_receiver(
    servicer: trace_service_pb2_grpc.TraceServiceServicer,
) -> tuple[grpc.Server, int]:
    """``servicer`` as the collector's ``TraceService`` on a free loopback port, started (the
    tests' receiver, ``tests/support/otlp.py``, is this with a servicer that keeps spans)."""
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        servicer, server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def main() -> int:
    sink = CountingSink()
    server, port = start_receiver(sink)
    print(port, flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    server.stop(1.0)
    print(sink.spans, flush=True)
    return 0


@contextmanager
def sink_process() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A running sink and its endpoint; its span count is the last line of its stdout."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.studies.otlp_sink"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.stdin.close()
        process.wait(10)


def received(process: subprocess.Popen[str]) -> int:
    """The spans a stopped sink received."""
    assert process.stdout is not None
    return int(process.stdout.read().split()[-1])


if __name__ == "__main__":
    sys.exit(main())
