"""The GenreClassifier servicer: a thin adapter from gRPC to the registry and batchers.

Each RPC runs inside ``observe_call``, the one place that turns ``ServiceError`` into its status,
anything unexpected into INTERNAL (traceback logged, nothing leaked), and writes the request's
metrics and its single log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog

from genre.v1 import genre_pb2
from server.errors import Draining, FailedPrecondition, InvalidArgument, ServiceError
from server.features import FloatArray, decode_features
from server.handlers import parsed
from server.logs import REQUEST_ID_KEY, get_logger
from server.logs import request_id as caller_request_id
from server.metrics import ServerMetrics
from server.registry import ModelRegistry, ServedVersion
from server.runner import AudioRunner, FeaturesRunner
from server.streams import (
    StreamLimits,
    StreamSession,
    StreamSlots,
    next_message,
    plan_stream,
    require_config,
    send,
)
from server.wire import results_encoder

log = get_logger("server.requests")
# How ListModels names each kind of model (kinds: ``modelcore.manifest.KIND_PARTS``).
KIND_ENUM = {"features": genre_pb2.FEATURES, "audio": genre_pb2.AUDIO}


@dataclass
class ServingState:
    """Shared with the app: whether the process is draining, and how many calls are active."""

    active_calls: int = 0
    last_call_started: float = 0.0
    drain_started: asyncio.Event = field(default_factory=asyncio.Event)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def draining(self) -> bool:
        return self.drain_started.is_set()

    def __post_init__(self) -> None:
        self._idle.set()

    def call_started(self) -> None:
        self.active_calls += 1
        self.last_call_started = time.monotonic()
        self._idle.clear()

    def call_finished(self) -> None:
        self.active_calls -= 1
        if self.active_calls == 0:
            self._idle.set()

    async def wait_quiet(self, seconds: float, settle: float) -> bool:
        """True once no call is active and none has started for ``settle`` seconds; False when
        ``seconds`` ran out first. Stopping the gRPC core while callers still arrive would end
        their calls CANCELLED; a settled server has shed them all with UNAVAILABLE."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    await self._idle.wait()
                    quiet_for = time.monotonic() - self.last_call_started
                    if self.active_calls == 0 and quiet_for >= settle:
                        return True
                    await asyncio.sleep(max(settle - quiet_for, 0.01))
        except TimeoutError:
            return False


@dataclass
class CallRecord:
    """What one call's log line and metrics say about it; filled in as the call proceeds."""

    method: str
    model: str = ""
    version: str = ""
    rows: int = 0
    batch_rows: int = 0
    status: str = "OK"


@contextlib.asynccontextmanager
async def observe_call(
    method: str,
    context: grpc.aio.ServicerContext[Any, Any],
    metrics: ServerMetrics,
    state: ServingState,
) -> AsyncIterator[CallRecord]:
    record = CallRecord(method=method)
    request_id = caller_request_id(context.invocation_metadata())
    started = time.perf_counter()
    in_flight = metrics.child(metrics.in_flight, method)
    in_flight.inc()
    state.call_started()
    failure: ServiceError | None = None
    with structlog_context(request_id=request_id):
        try:
            if state.draining:
                raise Draining("the server is draining; retry on another replica")
            yield record
        except ServiceError as error:
            failure = error
        except asyncio.CancelledError:
            record.status = "CANCELLED"
            raise
        except Exception:
            log.exception("unhandled_error", method=method)
            failure = ServiceError("internal error; the server log has the details")
        finally:
            if failure is not None:
                record.status = failure.code.name
            in_flight.dec()
            state.call_finished()
            elapsed = time.perf_counter() - started
            metrics.child(
                metrics.requests, method, record.model, record.version, record.status
            ).inc()
            metrics.child(metrics.request_latency, method, record.model).observe(elapsed)
            log.info(
                "request",
                method=method,
                model=record.model,
                version=record.version,
                rows=record.rows,
                batch=record.batch_rows,
                latency_ms=round(elapsed * 1000, 3),
                status=record.status,
                peer=context.peer(),
            )
        context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
        if failure is not None:
            await context.abort(failure.code, str(failure))


@contextlib.contextmanager
def structlog_context(**values: str) -> Iterator[None]:
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def _deadline(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class GenreClassifierServicer:
    """The RPCs of ``genre.v1.GenreClassifier``, registered by ``server.handlers.add_servicer``."""

    def __init__(
        self,
        registry: ModelRegistry,
        metrics: ServerMetrics,
        state: ServingState,
        max_rows_per_request: int,
        stream_limits: StreamLimits,
    ) -> None:
        self._registry = registry
        self._metrics = metrics
        self._state = state
        self._max_rows = max_rows_per_request
        self._stream_limits = stream_limits
        self._stream_slots = StreamSlots(stream_limits.max_streams, metrics)

    async def ClassifyFeatures(
        self,
        request: genre_pb2.ClassifyFeaturesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> genre_pb2.ClassifyFeaturesResponse:
        async with observe_call("ClassifyFeatures", context, self._metrics, self._state) as call:
            request = parsed(request)
            served = self._registry.resolve(request.model.name, request.model.version)
            call.model, call.version = served.name, str(served.version)
            runner = served.runner
            if not isinstance(runner, FeaturesRunner):
                raise InvalidArgument(
                    f"model.name: {served.name!r} is an {served.kind} model; "
                    "use ClassifyAudioStream"
                )
            matrix = decode_features(request, runner.preprocessor, self._max_rows)
            call.rows = int(matrix.shape[0])
            result = await served.batcher.submit(matrix, _deadline(context))
            call.batch_rows = result.batch_rows
            return features_response(served, result.outputs, request.top_k)
        raise AssertionError("unreachable: observe_call aborts on failure")

    async def ClassifyAudioStream(
        self,
        request_iterator: AsyncIterator[genre_pb2.ClassifyAudioStreamRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        """Responses go out with ``context.write`` under the idle timeout, so a client that stops
        reading cannot hold its stream (and its slot) open forever."""
        limits = self._stream_limits
        drain = self._state.drain_started
        async with observe_call("ClassifyAudioStream", context, self._metrics, self._state) as call:
            with self._stream_slots.hold():
                first = await next_message(request_iterator, limits.idle_timeout_seconds, drain)
                plan = plan_stream(require_config(first and parsed(first)), self._registry)
                call.model, call.version = plan.served.name, str(plan.served.version)
                session = StreamSession(plan, limits, self._metrics)
                while (
                    message := await next_message(
                        request_iterator, limits.idle_timeout_seconds, drain
                    )
                ) is not None:
                    payload = parsed(message).WhichOneof("payload")
                    if payload == "config":
                        raise FailedPrecondition("config: a stream takes exactly one config")
                    if payload != "audio":
                        raise InvalidArgument("payload: a message must carry config or audio")
                    async for response in session.feed(message.audio.data):
                        await send(context, response, limits.idle_timeout_seconds)
                    call.rows = session.windows_scored
                await send(context, await session.finish(), limits.idle_timeout_seconds)
                call.rows = session.windows_scored

    async def ListModels(
        self, request: genre_pb2.ListModelsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> genre_pb2.ListModelsResponse:
        async with observe_call("ListModels", context, self._metrics, self._state):
            parsed(request)
            table = self._registry.table
            return genre_pb2.ListModelsResponse(
                models=[
                    describe_version(served, table.defaults.get(served.name) == served.version)
                    for served in table.all()
                ]
            )
        raise AssertionError("unreachable: observe_call aborts on failure")


def features_response(
    served: ServedVersion, probabilities: FloatArray, top_k: int
) -> genre_pb2.ClassifyFeaturesResponse:
    """The response for ``(N, C)`` probabilities, results encoded straight to wire bytes
    (``wire``): a quarter of the cost of building score messages one by one, even for one row."""
    response = genre_pb2.ClassifyFeaturesResponse(
        model=genre_pb2.ModelRef(name=served.name, version=str(served.version))
    )
    response.MergeFromString(results_encoder(served.labels).encode(probabilities, top_k))
    return response


def describe_version(served: ServedVersion, is_default: bool) -> genre_pb2.ModelVersionInfo:
    manifest = served.manifest
    metrics = manifest.metrics
    info = genre_pb2.ModelVersionInfo(
        model=genre_pb2.ModelRef(name=served.name, version=str(served.version)),
        kind=KIND_ENUM[served.kind],
        labels=list(served.labels),
        metrics=[
            genre_pb2.Metric(name=str(key), value=float(value))
            for key, value in sorted(metrics.items())
            if isinstance(value, int | float) and not isinstance(value, bool)
        ],
        split_protocol=manifest.split_protocol,
        is_default=is_default,
        created=manifest.created,
        weights_sha256=manifest.weights_sha256,
    )
    runner = served.runner
    if isinstance(runner, FeaturesRunner):
        imputable = runner.preprocessor.imputable
        info.features.extend(
            genre_pb2.FeatureSpec(name=name, imputable=name in imputable)
            for name in runner.feature_names
        )
    if isinstance(runner, AudioRunner):
        frontend = runner.frontend_config
        info.audio.CopyFrom(
            genre_pb2.AudioFrontEnd(
                sample_rate=frontend.sample_rate,
                n_fft=frontend.n_fft,
                hop_length=frontend.hop_length,
                n_mels=frontend.n_mels,
                window_seconds=frontend.window_seconds,
                default_hop_seconds=frontend.default_hop_seconds,
            )
        )
    return info
