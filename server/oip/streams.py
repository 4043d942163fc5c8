"""``ModelStreamInfer``: live audio as Open Inference Protocol sequences, many per gRPC stream.

Triton's sequence parameters carry a live stream chunk by chunk: ``sequence_id`` (int64 or
string) names it, ``sequence_start`` (with ``sample_rate``) opens it, ``sequence_end`` closes it.
Each sequence is a genre.v1 stream underneath (``server.streaming.session.StreamSession``),
counted against
the same stream limit, capacity and lateness (``StreamResources``), so the answers are the same:
a response per window once one is full (parameters ``sequence_id``, ``window_start_seconds``,
``window_end_seconds``, ``final`` false; outputs the window's ``PROBABILITIES`` and ``LABEL``),
and after ``sequence_end`` one with ``final`` true and the track answer. A bad request does not
end the gRPC stream: its response carries ``error_message`` (status name first), as Triton's
does, and the other sequences go on. A sequence left open ends with the gRPC stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from genre.inference import grpc_service_pb2 as v2
from genre.v1 import genre_pb2
from server.errors import InvalidArgument, ServiceError
from server.handlers import parsed
from server.metrics import ServerMetrics
from server.oip.audio import (
    AUDIO,
    ENCODINGS,
    answer_of,
    audio_bytes,
    audio_config,
    sample_rate_of,
)
from server.oip.tensors import check_inputs, find_input, infer_response
from server.registry import Registry, ServedVersion
from server.signatures import AudioSignature
from server.streaming.admission import StreamResources
from server.streaming.session import StreamSession, plan_stream

FIELDS = ("model_name", "model_version")


@dataclass
class Sequence:
    served: ServedVersion
    datatype: str
    session: StreamSession
    exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


def _parameter(request: v2.ModelInferRequest, name: str) -> Any:
    if name not in request.parameters:
        return None
    parameter = request.parameters[name]
    choice = parameter.WhichOneof("parameter_choice")
    return None if choice is None else getattr(parameter, choice)


class Sequences:
    """The open sequences of one gRPC stream."""

    def __init__(
        self, registry: Registry, metrics: ServerMetrics, resources: StreamResources
    ) -> None:
        self._registry = registry
        self._metrics = metrics
        self._resources = resources
        self._open: dict[str, Sequence] = {}

    def close(self) -> None:
        for sequence in self._open.values():
            sequence.exits.close()
        self._open.clear()

    async def handle(self, raw: Any) -> AsyncIterator[v2.ModelStreamInferResponse]:
        """The responses to one request; a failure becomes a response with ``error_message``."""
        try:
            request: v2.ModelInferRequest = parsed(raw)
            async for response in self._answer(request):
                yield v2.ModelStreamInferResponse(infer_response=response)
        except ServiceError as error:
            yield v2.ModelStreamInferResponse(error_message=f"{error.code.name}: {error}")

    async def _answer(self, request: v2.ModelInferRequest) -> AsyncIterator[v2.ModelInferResponse]:
        key = _parameter(request, "sequence_id")
        if key is None or key == "" or key == 0:
            raise InvalidArgument("parameters.sequence_id: required (int64 or string, not 0)")
        key = str(key)
        check_inputs(request, {AUDIO})
        found = find_input(request, AUDIO)
        if _parameter(request, "sequence_start"):
            sequence = self._start(request, key, found[1].datatype if found else "FP32")
        elif key in self._open:
            sequence = self._open[key]
        else:
            raise InvalidArgument(
                f"parameters.sequence_id: no open sequence {key!r}; start one with sequence_start"
            )
        if found is not None:
            index, tensor = found
            if tensor.datatype != sequence.datatype:
                raise InvalidArgument(
                    f"{AUDIO}: sequence {key!r} started as {sequence.datatype}, "
                    f"this chunk is {tensor.datatype}"
                )
            data = audio_bytes(request, index, tensor)
            for window in await sequence.session.feed(data):
                yield _response(request, sequence.served, key, window, window.window)
        if _parameter(request, "sequence_end"):
            final = await sequence.session.finish()
            self._open.pop(key).exits.close()
            yield _response(request, sequence.served, key, final, final.track)

    def _start(self, request: v2.ModelInferRequest, key: str, datatype: str) -> Sequence:
        if key in self._open:
            raise InvalidArgument(f"parameters.sequence_id: sequence {key!r} is already open")
        served = self._registry.resolve(request.model_name, request.model_version, FIELDS)
        if not isinstance(served.signature, AudioSignature):
            raise InvalidArgument(
                f"model_name: {served.name!r} is a {served.kind} model; sequences carry audio"
            )
        if datatype not in ENCODINGS:
            raise InvalidArgument(f"{AUDIO}: datatype must be FP32 or INT16, got {datatype!r}")
        rate = sample_rate_of(request.parameters, "parameters")
        config = audio_config(served.name, str(served.version), rate, datatype, request.parameters)
        plan = plan_stream(config, self._registry)
        exits = contextlib.ExitStack()
        resources = self._resources
        try:
            exits.enter_context(resources.slots.hold())
            exits.enter_context(resources.admission.admit(plan))
        except BaseException:
            exits.close()
            raise
        session = StreamSession(plan, resources.limits, self._metrics, resources.lateness)
        sequence = Sequence(served, datatype, session, exits)
        self._open[key] = sequence
        return sequence


def _response(
    request: v2.ModelInferRequest,
    served: ServedVersion,
    key: str,
    answer: genre_pb2.ClassifyAudioStreamResponse,
    classification: genre_pb2.Classification,
) -> v2.ModelInferResponse:
    """One window's answer (or the final track answer) with the sequence's parameters."""
    probabilities, abstentions, music = answer_of(classification, served.labels)
    model = (served.name, str(served.version))
    response = infer_response(request, model, served.labels, probabilities, abstentions, music)
    response.parameters["sequence_id"].string_param = key
    response.parameters["window_start_seconds"].double_param = answer.window_start_seconds
    response.parameters["window_end_seconds"].double_param = answer.window_end_seconds
    response.parameters["final"].bool_param = answer.final
    return response
