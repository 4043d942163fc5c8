"""The Open Inference Protocol (KServe v2, ``inference.GRPCInferenceService``) over the same
registry, batchers, limits, metrics, logs and auth as ``genre.v1``.

Feature models take ``FEATURES`` (FP32, [N, F], columns in the order ``ModelMetadata`` and
``ListModels`` give) and, optionally, ``FEATURE_NAMES`` (BYTES, [F]) to send the columns in the
caller's own order, leaving out features the model imputes; a model with text features also
takes each as an optional BYTES [N] input named in upper case (``TITLE``: one UTF-8 title per
row, empty for none). They answer ``PROBABILITIES`` (FP32,
[N, C], in ``ListModels``' label order) and ``LABEL`` (BYTES, [N], the top genre), raw. Audio
models take ``AUDIO`` (FP32 or INT16, [1, S], mono) with the parameter ``sample_rate``:
``ModelInfer`` answers a whole clip's track, ``ModelStreamInfer`` live sequences
(``server.oip.streams``). Liveness and readiness follow the health service (and, like it, need no
token: ``server.auth``); ``ModelConfig`` states the signature as a Triton configuration;
``ModelStatistics`` reads the server's own counters (``server.oip.statistics``). The repository,
trace, log and shared-memory methods are not served: gRPC answers UNIMPLEMENTED for methods not
registered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib import metadata
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import Message

from genre.inference import grpc_service_pb2 as v2
from genre.inference import model_config_pb2
from genre.v1 import genre_pb2
from modelcore.abstention import row_abstentions
from server.abstention import call_min_probability
from server.calls import CallRecord, ServingState, deadline_of, observe_call
from server.errors import InvalidArgument, ServiceError
from server.features import DenseFields, decode_matrix, place_text
from server.handlers import MalformedMessage, parsed
from server.metrics import ServerMetrics
from server.oip.audio import (
    AUDIO,
    ENCODINGS,
    answer_of,
    audio_bytes,
    audio_config,
    feed_all,
    sample_rate_of,
)
from server.oip.statistics import statistics_registry, statistics_response, versions_asked
from server.oip.streams import Sequences
from server.oip.tensors import (
    ABSTENTION,
    LABEL,
    MUSIC_PROBABILITY,
    PROBABILITIES,
    check_inputs,
    find_input,
    float_parameter,
    fp32_values,
    infer_response,
    string_values,
)
from server.registry import Registry, ServedVersion
from server.signatures import AudioSignature, FeaturesSignature
from server.streaming.admission import StreamResources
from server.streaming.session import StreamSession, plan_stream

FIELDS = ("model_name", "model_version")
PROTOCOL = "v2"  # the protocol label of this service's metrics and log lines
FEATURES, FEATURE_NAMES = "FEATURES", "FEATURE_NAMES"
Context = grpc.aio.ServicerContext[Any, Any]
Tensor = v2.ModelMetadataResponse.TensorMetadata


def version_of(served: ServedVersion) -> tuple[str, str]:
    return served.name, str(served.version)


def tensor(name: str, datatype: str, shape: list[int]) -> Tensor:
    return Tensor(name=name, datatype=datatype, shape=shape)


def text_inputs(model: FeaturesSignature) -> dict[str, str]:
    """The optional BYTES inputs of a model's text features: tensor name -> feature name."""
    return {feature.name.upper(): feature.name for feature in model.preprocessor.text_features}


def signature(served: ServedVersion) -> tuple[list[Tensor], list[Tensor]]:
    """Inputs and outputs of one version, as ``ModelMetadata`` states them."""
    classes = len(served.labels)
    model = served.signature
    if isinstance(model, AudioSignature):
        inputs = [tensor("AUDIO", "FP32", [1, -1])]
        return inputs, [
            tensor(PROBABILITIES, "FP32", [1, classes]),
            tensor(LABEL, "BYTES", [1]),
            tensor(ABSTENTION, "BYTES", [1]),
            tensor(MUSIC_PROBABILITY, "FP32", [1]),
        ]
    assert isinstance(model, FeaturesSignature)
    columns = len(model.feature_names)
    inputs = [tensor(FEATURES, "FP32", [-1, columns]), tensor(FEATURE_NAMES, "BYTES", [columns])]
    inputs += [tensor(name, "BYTES", [-1]) for name in text_inputs(model)]
    return inputs, [
        tensor(PROBABILITIES, "FP32", [-1, classes]),
        tensor(LABEL, "BYTES", [-1]),
        tensor(ABSTENTION, "BYTES", [-1]),
    ]


async def _refuse_malformed(request: Message | MalformedMessage, context: Context) -> None:
    """Probes are answered outside ``observe_call`` (they are not calls worth a log line each),
    but undecodable bytes still get INVALID_ARGUMENT, as SECURITY.md promises."""
    try:
        parsed(request)
    except ServiceError as error:
        await context.abort(error.code, str(error))


DATA_TYPES = {"FP32": model_config_pb2.TYPE_FP32, "BYTES": model_config_pb2.TYPE_STRING}


def model_config(served: ServedVersion) -> model_config_pb2.ModelConfig:
    inputs, outputs = signature(served)
    config = model_config_pb2.ModelConfig(
        name=served.name, platform="pytorch", backend="genre-serve", max_batch_size=0
    )
    for item in inputs:
        config.input.add(
            name=item.name,
            data_type=DATA_TYPES[item.datatype],
            dims=list(item.shape),
            optional=item.name != FEATURES and item.name != AUDIO,
        )
    for item in outputs:
        config.output.add(
            name=item.name, data_type=DATA_TYPES[item.datatype], dims=list(item.shape)
        )
    if isinstance(served.signature, AudioSignature):
        config.sequence_batching.SetInParent()
    return config


class InferenceServicer:
    def __init__(
        self,
        registry: Registry,
        metrics: ServerMetrics,
        state: ServingState,
        max_rows: int,
        streams: StreamResources,
    ) -> None:
        self._registry = registry
        self._metrics = metrics
        self._state = state
        self._max_rows = max_rows
        self._streams = streams
        self._statistics = statistics_registry(metrics.registry)

    async def ServerLive(self, request: Any, context: Context) -> v2.ServerLiveResponse:
        await _refuse_malformed(request, context)
        return v2.ServerLiveResponse(live=not self._state.draining)

    async def ServerReady(self, request: Any, context: Context) -> v2.ServerReadyResponse:
        await _refuse_malformed(request, context)
        return v2.ServerReadyResponse(ready=self._state.ready)

    async def ModelReady(
        self, request: v2.ModelReadyRequest, context: Context
    ) -> v2.ModelReadyResponse:
        await _refuse_malformed(request, context)
        try:
            self._registry.resolve(request.name, request.version, ("name", "version"))
        except ServiceError:
            return v2.ModelReadyResponse(ready=False)
        return v2.ModelReadyResponse(ready=not self._state.draining)

    async def ServerMetadata(self, request: Any, context: Context) -> v2.ServerMetadataResponse:
        await _refuse_malformed(request, context)
        return v2.ServerMetadataResponse(
            name="genre-serve", version=metadata.version("genre-serve")
        )

    @contextlib.asynccontextmanager
    async def _model_call(
        self, method: str, raw: Any, context: Context, fields: tuple[str, str] = ("name", "version")
    ) -> AsyncIterator[tuple[Any, ServedVersion, CallRecord]]:
        """A call about one model version: observed (metrics, log line, status), its request
        parsed, the version named by ``fields`` resolved."""
        async with observe_call(method, context, self._metrics, self._state, PROTOCOL) as call:
            request = parsed(raw)
            name, version = (getattr(request, field) for field in fields)
            served = self._registry.resolve(name, version, fields)
            call.model, call.version = served.name, str(served.version)
            yield request, served, call

    async def ModelMetadata(
        self, request: v2.ModelMetadataRequest, context: Context
    ) -> v2.ModelMetadataResponse:
        async with self._model_call("ModelMetadata", request, context) as (_, served, _call):
            versions = self._registry.table.versions[served.name]
            inputs, outputs = signature(served)
            return v2.ModelMetadataResponse(
                name=served.name,
                versions=[str(version) for version in sorted(versions)],
                platform="pytorch",
                inputs=inputs,
                outputs=outputs,
            )
        raise AssertionError("unreachable: observe_call aborts on failure")

    async def ModelConfig(
        self, request: v2.ModelConfigRequest, context: Context
    ) -> v2.ModelConfigResponse:
        """The signature of ``ModelMetadata`` as a Triton model configuration, for clients and
        load generators (perf_analyzer) that read it: full shapes (``max_batch_size`` 0, rows
        are the first dimension), ``FEATURE_NAMES`` optional, and ``sequence_batching`` on audio
        models, whose streams are sequences."""
        async with self._model_call("ModelConfig", request, context) as (_, served, _call):
            return v2.ModelConfigResponse(config=model_config(served))
        raise AssertionError("unreachable: observe_call aborts on failure")

    async def ModelStatistics(
        self, request: v2.ModelStatisticsRequest, context: Context
    ) -> v2.ModelStatisticsResponse:
        """Triton's statistics per model version, from every process's counters."""
        async with observe_call(
            "ModelStatistics", context, self._metrics, self._state, PROTOCOL
        ) as call:
            request = parsed(request)
            versions = versions_asked(self._registry, request.name, request.version)
            if request.name:  # resolved: a served name, never a caller's string, labels metrics
                call.model = versions[0][0]
            # Reading every worker's metric files is file I/O: not on the event loop.
            return await asyncio.to_thread(statistics_response, versions, self._statistics)
        raise AssertionError("unreachable: observe_call aborts on failure")

    async def ModelInfer(
        self, request: v2.ModelInferRequest, context: Context
    ) -> v2.ModelInferResponse:
        async with self._model_call("ModelInfer", request, context, FIELDS) as (
            request,
            served,
            call,
        ):
            model = served.signature
            if isinstance(model, AudioSignature):
                final, call.rows = await self._clip(request, served)
                answer = answer_of(final, served.labels)
                return infer_response(request, version_of(served), served.labels, *answer)
            assert isinstance(model, FeaturesSignature)
            matrix = self._features(request, model)
            call.rows = int(matrix.shape[0])
            threshold = call_min_probability(
                float_parameter(request.parameters, "min_probability"),
                "parameters.min_probability",
                self._streams.limits.min_probability,
                served.manifest.min_probability,
            )
            result = await served.batcher.submit(matrix, deadline_of(context))
            call.batch_rows = result.batch_rows
            abstentions = row_abstentions(result.outputs, threshold)
            return infer_response(
                request, version_of(served), served.labels, result.outputs, abstentions
            )
        raise AssertionError("unreachable: observe_call aborts on failure")

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[Any], context: Context
    ) -> None:
        async with observe_call(
            "ModelStreamInfer", context, self._metrics, self._state, PROTOCOL
        ) as call:
            sequences = Sequences(self._registry, self._metrics, self._streams)
            try:
                async for raw in request_iterator:
                    async for response in sequences.handle(raw):
                        if response.HasField("infer_response"):
                            call.model = response.infer_response.model_name
                            call.version = response.infer_response.model_version
                            call.rows += 1
                        await context.write(response)
            finally:
                sequences.close()

    async def _clip(
        self, request: v2.ModelInferRequest, served: ServedVersion
    ) -> tuple[genre_pb2.Classification, int]:
        """A whole clip's track answer, as genre.v1's stream would give it at the end."""
        check_inputs(request, {AUDIO})
        found = find_input(request, AUDIO)
        if found is None:
            raise InvalidArgument(f"inputs: {AUDIO} is required (FP32 or INT16, [1, S])")
        index, tensor = found
        data = audio_bytes(request, index, tensor)
        rate = sample_rate_of(request.parameters, "parameters")
        config = audio_config(
            served.name, str(served.version), rate, tensor.datatype, request.parameters
        )
        plan = plan_stream(config, self._registry)
        limits = self._streams.limits
        session = StreamSession(plan, limits, self._metrics)
        width = np.dtype(ENCODINGS[tensor.datatype][1]).itemsize
        await feed_all(session, data, limits.max_chunk_bytes, width)
        final = await session.finish()
        return final.track, session.windows_scored

    def _features(self, request: v2.ModelInferRequest, model: FeaturesSignature) -> np.ndarray:
        texts = text_inputs(model)
        check_inputs(request, {FEATURES, FEATURE_NAMES, *texts})
        found = find_input(request, FEATURES)
        if found is None:
            raise InvalidArgument(f"inputs: {FEATURES} is required (FP32, [N, F])")
        index, features = found
        values = fp32_values(request, index, features)
        if len(features.shape) != 2:
            raise InvalidArgument(f"{FEATURES}: shape must be [N, F], got {list(features.shape)}")
        named = find_input(request, FEATURE_NAMES)
        names = string_values(request, *named) if named is not None else list(model.feature_names)
        if features.shape[1] != len(names):
            raise InvalidArgument(
                f"{FEATURES}: {features.shape[1]} columns, but "
                + (
                    f"{FEATURE_NAMES} names {len(names)}"
                    if named
                    else f"the model has {len(names)}"
                )
            )
        matrix = decode_matrix(
            names, values, model.preprocessor, self._max_rows, DenseFields(FEATURE_NAMES, FEATURES)
        )
        for name, feature in texts.items():
            found = find_input(request, name)
            if found is None:
                continue
            strings = string_values(request, *found)
            if len(strings) != len(matrix) or len(found[1].shape) != 1:
                raise InvalidArgument(
                    f"{name}: shape {list(found[1].shape)}, but {FEATURES} has {len(matrix)} "
                    f"rows (one string per row, [{len(matrix)}])"
                )
            for row, text in enumerate(strings):
                place_text(
                    matrix[row], {feature: text}, model.preprocessor, f"{name}[{row}]", False
                )
        return matrix
