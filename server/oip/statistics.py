"""Triton's ``ModelStatistics`` (Open Inference Protocol) from the server's own Prometheus counters.

Nothing is counted twice on the side: the figures are read back through a metrics registry, so
they are the ones /metrics shows. In a single process that is the server's own registry; where
``PROMETHEUS_MULTIPROC_DIR`` is set (worker processes, ``server.pod.supervisor``, and any other
process of the server that writes its metrics there), a ``MultiProcessCollector`` over that
directory, so an answer from any worker counts every process that ever ran, as the supervisor's
/metrics does.

Per model version, Triton's fields come from:

- ``inference_count``: ``genre_inferred_rows_total`` (rows, or audio windows, through the model:
  Triton counts each inference of a batch).
- ``execution_count``: ``genre_batch_executions_total`` (batched forward passes).
- ``inference_stats.success`` / ``fail``: count of ``genre_requests_total`` with status OK / any
  other, over the inference methods of both protocols (ClassifyFeatures, ClassifyAudioStream,
  ModelInfer, ModelStreamInfer); a stream is one request. Their ``ns`` stays 0: the request
  duration histogram has no version or status label to attribute time by.
- ``inference_stats.queue``: ``genre_queue_duration_seconds`` (per request, queued to batched).
- ``inference_stats.compute_infer``: ``genre_compute_duration_seconds``, per batched execution
  (Triton times each request), covering preprocessing, forward pass and softmax together.
  ``compute_input`` and ``compute_output`` have the same count and 0 ns: those stages are timed
  inside ``compute_infer``, not apart.
- ``last_inference`` stays 0 and ``batch_stats`` empty: no counter holds a time of day or the
  compute time per exact batch size (``genre_batch_size_rows`` has buckets, not sizes).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from genre.inference import grpc_service_pb2 as v2
from server.errors import InvalidArgument
from server.registry import Registry

INFERENCE_METHODS = frozenset(
    {"ClassifyFeatures", "ClassifyAudioStream", "ModelInfer", "ModelStreamInfer"}
)
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
NANOSECONDS = 1_000_000_000
Key = tuple[str, str]  # (model, version)


@dataclass
class VersionFigures:
    """One version's counters as Prometheus holds them (seconds, floats)."""

    inferences: float = 0.0
    executions: float = 0.0
    successes: float = 0.0
    failures: float = 0.0
    queued: float = 0.0
    queue_seconds: float = 0.0
    computed: float = 0.0
    compute_seconds: float = 0.0


# sample name -> the VersionFigures field it adds to
_SAMPLES = {
    "genre_inferred_rows_total": "inferences",
    "genre_batch_executions_total": "executions",
    "genre_queue_duration_seconds_count": "queued",
    "genre_queue_duration_seconds_sum": "queue_seconds",
    "genre_compute_duration_seconds_count": "computed",
    "genre_compute_duration_seconds_sum": "compute_seconds",
}


def statistics_registry(
    own: CollectorRegistry, environ: Mapping[str, str] | None = None
) -> CollectorRegistry:
    """The registry to read: the process's own, or every process's files where they are kept."""
    environ = os.environ if environ is None else environ
    directory = environ.get(MULTIPROCESS_VARIABLE)
    if not directory:
        return own
    every_process = CollectorRegistry()
    MultiProcessCollector(every_process, path=directory)  # type: ignore[no-untyped-call]
    return every_process


def read_figures(registry: CollectorRegistry) -> dict[Key, VersionFigures]:
    """(model, version) -> its figures, summed over every series (and process) that has it.

    Reads files in multiprocess mode: call it off the event loop."""
    figures: dict[Key, VersionFigures] = defaultdict(VersionFigures)
    for family in registry.collect():
        for sample in family.samples:
            labels = sample.labels
            key = (labels.get("model", ""), labels.get("version", ""))
            field = _SAMPLES.get(sample.name)
            if field is not None:
                found = figures[key]
                setattr(found, field, getattr(found, field) + sample.value)
            elif (
                sample.name == "genre_requests_total" and labels.get("method") in INFERENCE_METHODS
            ):
                found = figures[key]
                if labels.get("status") == "OK":
                    found.successes += sample.value
                else:
                    found.failures += sample.value
    return dict(figures)


def versions_asked(registry: Registry, name: str, version: str) -> list[Key]:
    """Triton's selection: no name, every served version; a name, its versions; both, that one.
    An unknown name or version is NOT_FOUND, as elsewhere."""
    if not name:
        if version:
            raise InvalidArgument("version: given without name (no name asks for every model)")
        return [(served.name, str(served.version)) for served in registry.table.all()]
    served = registry.resolve(name, version, ("name", "version"))
    if version:
        return [(served.name, str(served.version))]
    return [(served.name, str(number)) for number in sorted(registry.table.versions[served.name])]


def _duration(count: float, seconds: float = 0.0) -> v2.StatisticDuration:
    return v2.StatisticDuration(count=round(count), ns=round(seconds * NANOSECONDS))


def model_statistics(name: str, version: str, figures: VersionFigures) -> v2.ModelStatistics:
    """Triton's message for one version (see the module docstring for each field's source)."""
    computed = figures.computed
    return v2.ModelStatistics(
        name=name,
        version=version,
        inference_count=round(figures.inferences),
        execution_count=round(figures.executions),
        inference_stats=v2.InferStatistics(
            success=_duration(figures.successes),
            fail=_duration(figures.failures),
            queue=_duration(figures.queued, figures.queue_seconds),
            compute_input=_duration(computed),
            compute_infer=_duration(computed, figures.compute_seconds),
            compute_output=_duration(computed),
        ),
    )


def statistics_response(
    versions: Iterable[Key], registry: CollectorRegistry
) -> v2.ModelStatisticsResponse:
    """One ``ModelStatistics`` per (model, version) asked for, in the order given."""
    figures = read_figures(registry)
    return v2.ModelStatisticsResponse(
        model_stats=[
            model_statistics(name, version, figures.get((name, version), VersionFigures()))
            for name, version in versions
        ]
    )
