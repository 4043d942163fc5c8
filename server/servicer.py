"""The GenreClassifier servicer: a thin adapter from gRPC to the registry and batchers.

Each RPC validates, resolves the model version, hands the work to its batcher or stream session
and returns the response ``server.responses`` builds, all inside ``server.calls.observe_call``
(statuses, metrics, the call's log line).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from genre.v1 import genre_pb2
from modelcore.abstention import row_abstentions
from server.abstention import call_min_probability
from server.calls import CallRecord, ServingState, deadline_of, observe_call
from server.errors import FailedPrecondition, InvalidArgument
from server.features import decode_features
from server.handlers import parsed
from server.metrics import ServerMetrics
from server.pod.shares import PodShares
from server.registry import Registry
from server.responses import features_response, list_models_response
from server.signatures import FeaturesSignature
from server.streaming.admission import StreamAdmission, StreamResources
from server.streaming.lateness import Lateness
from server.streaming.reader import MessageReader
from server.streaming.session import (
    StreamLimits,
    StreamPlan,
    StreamSession,
    StreamSlots,
    plan_stream,
    require_config,
    send,
)


class GenreClassifierServicer:
    """The RPCs of ``genre.v1.GenreClassifier``, registered by ``server.handlers.add_servicer``."""

    def __init__(
        self,
        registry: Registry,
        metrics: ServerMetrics,
        state: ServingState,
        max_rows_per_request: int,
        stream_limits: StreamLimits,
        lateness: Lateness | None = None,
        shares: PodShares | None = None,
        pooled_load: bool = False,
    ) -> None:
        """``shares``: the pod's stream counts (worker processes); ``pooled_load``: the load
        counts against the pod's one inference process, not this process's own models."""
        self._registry = registry
        self._metrics = metrics
        self._state = state
        self._max_rows = max_rows_per_request
        self._stream_limits = stream_limits
        self._stream_slots = StreamSlots(stream_limits.max_streams, metrics, shares)
        self._lateness = lateness
        self._admission = StreamAdmission(
            stream_limits.admission_load,
            stream_limits.audio_windows_per_second,
            metrics,
            lateness,
            stream_limits.latency_bound_seconds,
            shares if pooled_load else None,
        )
        self.streams = StreamResources(stream_limits, self._stream_slots, self._admission, lateness)

    async def ClassifyFeatures(
        self,
        request: genre_pb2.ClassifyFeaturesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> genre_pb2.ClassifyFeaturesResponse:
        async with observe_call("ClassifyFeatures", context, self._metrics, self._state) as call:
            request = parsed(request)
            served = self._registry.resolve(request.model.name, request.model.version)
            call.model, call.version = served.name, str(served.version)
            signature = served.signature
            if not isinstance(signature, FeaturesSignature):
                raise InvalidArgument(
                    f"model.name: {served.name!r} is an {served.kind} model; "
                    "use ClassifyAudioStream"
                )
            matrix = decode_features(request, signature.preprocessor, self._max_rows)
            call.rows = int(matrix.shape[0])
            result = await served.batcher.submit(matrix, deadline_of(context))
            call.batch_rows = result.batch_rows
            threshold = call_min_probability(
                request.min_probability if request.HasField("min_probability") else None,
                "min_probability",
                self._stream_limits.min_probability,
                served.manifest.min_probability,
            )
            abstentions = row_abstentions(result.outputs, threshold)
            uncertain = sum(1 for abstention in abstentions if abstention)
            if uncertain:
                self._metrics.child(self._metrics.abstentions, served.name, "row", "uncertain").inc(
                    uncertain
                )
            return features_response(served, result.outputs, request.top_k, abstentions)
        raise AssertionError("unreachable: observe_call aborts on failure")

    async def ClassifyAudioStream(
        self,
        request_iterator: AsyncIterator[genre_pb2.ClassifyAudioStreamRequest],
        context: grpc.aio.ServicerContext[Any, Any],
        protocol: str = "genre.v1",
    ) -> None:
        """Responses go out with ``context.write`` under the idle timeout, so a client that stops
        reading cannot hold its stream (and its slot) open forever. ``protocol``: ``websocket``
        when the web bridge (``server.web.bridge``) drives this same path for a browser."""
        method = "ClassifyAudioStream"
        async with observe_call(method, context, self._metrics, self._state, protocol) as call:
            with self._stream_slots.hold():
                reader = MessageReader(
                    request_iterator,
                    self._stream_limits.idle_timeout_seconds,
                    self._state.drain,
                    context.done,
                )
                try:
                    first = await reader.next()
                    plan = plan_stream(require_config(first and parsed(first)), self._registry)
                    call.model, call.version = plan.served.name, str(plan.served.version)
                    with self._admission.admit(plan):
                        await self._stream(plan, reader, context, call)
                finally:
                    reader.close()

    async def _stream(
        self,
        plan: StreamPlan,
        reader: MessageReader[genre_pb2.ClassifyAudioStreamRequest],
        context: grpc.aio.ServicerContext[Any, Any],
        call: CallRecord,
    ) -> None:
        """An admitted stream after its config: audio in, one response per window out."""
        limits = self._stream_limits
        session = StreamSession(plan, limits, self._metrics, self._lateness)
        while (message := await reader.next()) is not None:
            payload = parsed(message).WhichOneof("payload")
            if payload == "config":
                raise FailedPrecondition("config: a stream takes exactly one config")
            if payload != "audio":
                raise InvalidArgument("payload: a message must carry config or audio")
            for response in await session.feed(message.audio.data):
                await send(context, response, limits.idle_timeout_seconds)
            call.rows = session.windows_scored
        await send(context, await session.finish(), limits.idle_timeout_seconds)
        call.rows = session.windows_scored

    async def ListModels(
        self, request: genre_pb2.ListModelsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> genre_pb2.ListModelsResponse:
        async with observe_call("ListModels", context, self._metrics, self._state):
            parsed(request)
            return list_models_response(self._registry.table, self._stream_limits.min_probability)
        raise AssertionError("unreachable: observe_call aborts on failure")
