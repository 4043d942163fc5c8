"""Prometheus metrics, one registry per server instance so several servers can share a process.

Under worker processes (``server.pod.supervisor``) every value also goes to prometheus_client's
multiprocess files, and the supervisor's /metrics adds them up: counters and histograms summed
over every worker that ever ran, gauges by their ``multiprocess_mode`` over the live ones (sums
for in-flight work, the maximum for a 0/1 info gauge and a per-worker load share, one series per
process for the task count).

Names follow Prometheus conventions: ``genre_`` prefix, base units, ``_total`` for counters. The
average batch size is ``genre_inferred_rows_total / genre_batch_executions_total``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
MetricT = TypeVar("MetricT", Counter, Gauge, Histogram)


@dataclass(frozen=True)
class ServerMetrics:
    registry: CollectorRegistry
    requests: Counter
    request_latency: Histogram
    in_flight: Gauge
    queue_time: Histogram
    compute_time: Histogram
    batch_size: Histogram
    inferred_rows: Counter
    batch_executions: Counter
    queue_rows: Gauge
    model_info: Gauge
    model_load_failures: Counter
    open_streams: Gauge
    stream_load: Gauge
    audio_seconds: Counter
    abstentions: Counter
    window_latency: Histogram
    stream_real_time_factor: Histogram
    auth_failures: Counter
    event_loop_tasks: Gauge
    event_loop_lag: Gauge
    _children: dict[tuple[int, tuple[str, ...]], object] = field(
        default_factory=dict, compare=False, repr=False
    )

    def child(self, metric: MetricT, *values: str) -> MetricT:
        """``metric.labels(*values)``, remembered: ``labels()`` validates its arguments and takes
        a lock every time (about 3 µs), and the per-call path asks for the same few children."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found  # type: ignore[return-value]

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> ServerMetrics:
        registry = registry if registry is not None else CollectorRegistry()
        model = ("model", "version")
        return cls(
            registry=registry,
            requests=Counter(
                "genre_requests",
                "Finished RPCs by method, model, version, status code and protocol (genre.v1, or "
                "v2 for the Open Inference Protocol).",
                ("method", "model", "version", "status", "protocol"),
                registry=registry,
            ),
            request_latency=Histogram(
                "genre_request_duration_seconds",
                "Wall time of an RPC inside the server, from receipt to response.",
                ("method", "model", "protocol"),
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            in_flight=Gauge(
                "genre_in_flight_requests",
                "RPCs being handled right now (an autoscaling signal).",
                ("method",),
                multiprocess_mode="livesum",
                registry=registry,
            ),
            queue_time=Histogram(
                "genre_queue_duration_seconds",
                "Time a request's rows waited in the batcher before their forward pass began.",
                model,
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            compute_time=Histogram(
                "genre_compute_duration_seconds",
                "Time of one batched execution: preprocessing, forward pass, softmax.",
                model,
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            batch_size=Histogram(
                "genre_batch_size_rows",
                "Rows in one batched execution.",
                model,
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            inferred_rows=Counter(
                "genre_inferred_rows", "Rows that went through a model.", model, registry=registry
            ),
            batch_executions=Counter(
                "genre_batch_executions",
                "Batched forward passes executed.",
                model,
                registry=registry,
            ),
            queue_rows=Gauge(
                "genre_queue_rows",
                "Rows waiting in a model's batcher.",
                model,
                multiprocess_mode="livesum",
                registry=registry,
            ),
            model_info=Gauge(
                "genre_model_info",
                "1 per loaded model version; is_default marks the one unversioned calls get.",
                ("model", "version", "kind", "is_default"),
                multiprocess_mode="livemax",
                registry=registry,
            ),
            model_load_failures=Counter(
                "genre_model_load_failures",
                "Model versions refused at load (corrupt, incomplete, unsupported).",
                ("model",),
                registry=registry,
            ),
            open_streams=Gauge(
                "genre_open_streams",
                "ClassifyAudioStream calls open now.",
                multiprocess_mode="livesum",
                registry=registry,
            ),
            stream_load=Gauge(
                "genre_stream_load",
                "Share of the audio models' measured windows/s that open streams ask for.",
                multiprocess_mode="livemax",
                registry=registry,
            ),
            audio_seconds=Counter(
                "genre_audio_received_seconds",
                "Seconds of audio received on streams.",
                ("model",),
                registry=registry,
            ),
            abstentions=Counter(
                "genre_abstentions",
                "Answers that abstained, by reason (silence, not_music, uncertain) and scope "
                "(window, track: a stream's final answer; row: a features row).",
                ("model", "scope", "reason"),
                registry=registry,
            ),
            window_latency=Histogram(
                "genre_window_latency_seconds",
                "From the arrival of a window's last sample to its response being sent.",
                ("model",),
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            stream_real_time_factor=Histogram(
                "genre_stream_real_time_factor",
                "Per finished stream: server wall time / audio seconds (below 1: faster than "
                "real time; about 1: a live stream paced by its source).",
                ("model",),
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.5, 2.0, 5.0),
                registry=registry,
            ),
            auth_failures=Counter(
                "genre_auth_failures",
                "Calls refused by bearer-token authentication, by status.",
                ("status",),
                registry=registry,
            ),
            event_loop_lag=Gauge(
                "genre_event_loop_lag_seconds",
                "How late the event loop woke from its last 0.1-s sleep (saturation shows here "
                "before it shows in latencies).",
                multiprocess_mode="livemax",
                registry=registry,
            ),
            event_loop_tasks=Gauge(
                "genre_event_loop_tasks",
                "asyncio tasks alive in the server's event loop (a leak shows as growth).",
                multiprocess_mode="liveall",
                registry=registry,
            ),
        )
