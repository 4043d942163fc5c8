"""Traces: a caller's W3C ``traceparent`` followed through the call, the queue, the batch and
the model, across the worker and inference processes.

- ``context``: the trace context on the call path, standard library only, so a server that does
  not export traces pays a string comparison or two per call and never imports OpenTelemetry;
- ``spans``: the spans and their OTLP/gRPC export, loaded by ``start_tracing`` only when
  ``GENRE_OTLP_ENDPOINT`` is set.

docs/tracing.md says what a trace holds and how to read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.tracing.spans import Tracing


def start_tracing(endpoint: str, process: str, worker: int | None = None) -> Tracing | None:
    """This process's span exporter (``process``: server, worker or inference), or None without
    an endpoint (``GENRE_OTLP_ENDPOINT``): only then is OpenTelemetry imported."""
    if not endpoint:
        return None
    from server.tracing.spans import Tracing

    return Tracing(endpoint, process, worker)
