"""Tensors of the Open Inference Protocol (KServe v2) in and out, as numpy arrays and strings.

A request carries each input either as ``raw_input_contents`` (one bytes entry per input, in the
order of ``inputs``: little-endian values, BYTES as 4-byte length-prefixed strings) or as typed
``contents``; a caller uses one or the other for the whole request, as Triton requires. Outputs
always go back raw, as ``tritonclient`` reads them fastest. Every error names the tensor.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import numpy as np

from genre.inference import grpc_service_pb2 as v2
from modelcore.abstention import Abstention
from server.errors import InvalidArgument
from server.features import FloatArray

Request = v2.ModelInferRequest
InputTensor = v2.ModelInferRequest.InferInputTensor
_LENGTH = struct.Struct("<I")
PROBABILITIES, LABEL = "PROBABILITIES", "LABEL"
# Whether to trust each row ("answered", "silence", "not_music", "uncertain"), and the music
# detector's probability (audio models; NaN where the version has no detector).
ABSTENTION, MUSIC_PROBABILITY = "ABSTENTION", "MUSIC_PROBABILITY"


def find_input(request: Request, name: str) -> tuple[int, InputTensor] | None:
    for index, tensor in enumerate(request.inputs):
        if tensor.name == name:
            return index, tensor
    return None


def check_inputs(request: Request, known: set[str]) -> None:
    for tensor in request.inputs:
        if tensor.name not in known:
            raise InvalidArgument(
                f"inputs: unknown input {tensor.name!r} for model {request.model_name!r} "
                f"(it takes {', '.join(sorted(known))})"
            )
    if request.raw_input_contents and len(request.raw_input_contents) != len(request.inputs):
        raise InvalidArgument(
            f"raw_input_contents: {len(request.raw_input_contents)} entries for "
            f"{len(request.inputs)} inputs; send every input raw or none"
        )


def element_count(tensor: InputTensor) -> int:
    if any(dimension < 0 for dimension in tensor.shape):
        raise InvalidArgument(f"{tensor.name}: shape {list(tensor.shape)} has a negative size")
    return int(np.prod(tensor.shape, dtype=np.int64)) if tensor.shape else 0


# Typed contents field and little-endian dtype of each numeric datatype the models take.
NUMERIC = {"FP32": ("fp32_contents", "<f4"), "INT16": ("int_contents", "<i2")}


def numeric_values(request: Request, index: int, tensor: InputTensor) -> np.ndarray:
    """A numeric tensor's values, flat, in its own dtype, checked against its shape: raw bytes
    must be exactly the shape's worth, typed contents exactly the shape's count."""
    field, dtype = NUMERIC[tensor.datatype]
    count = element_count(tensor)
    if request.raw_input_contents:
        raw = request.raw_input_contents[index]
        width = np.dtype(dtype).itemsize
        if len(raw) != width * count:
            raise InvalidArgument(
                f"{tensor.name}: {len(raw)} raw bytes for shape {list(tensor.shape)} "
                f"({width * count} expected for {tensor.datatype})"
            )
        return np.frombuffer(raw, dtype=dtype)
    typed = getattr(tensor.contents, field)
    if len(typed) != count:
        raise InvalidArgument(f"{tensor.name}: {len(typed)} {field} for shape {list(tensor.shape)}")
    return np.asarray(typed).astype(dtype)


def fp32_values(request: Request, index: int, tensor: InputTensor) -> FloatArray:
    """An FP32 tensor's values, flat (``numeric_values``)."""
    if tensor.datatype != "FP32":
        raise InvalidArgument(f"{tensor.name}: datatype must be FP32, got {tensor.datatype!r}")
    return numeric_values(request, index, tensor).astype(np.float32)


def string_values(request: Request, index: int, tensor: InputTensor) -> list[str]:
    """A BYTES tensor as UTF-8 strings."""
    if tensor.datatype != "BYTES":
        raise InvalidArgument(f"{tensor.name}: datatype must be BYTES, got {tensor.datatype!r}")
    count = element_count(tensor)
    if request.raw_input_contents:
        items = _split_raw_bytes(tensor.name, request.raw_input_contents[index])
    else:
        items = list(tensor.contents.bytes_contents)
    if len(items) != count:
        raise InvalidArgument(f"{tensor.name}: {len(items)} strings for shape {list(tensor.shape)}")
    strings = []
    for position, item in enumerate(items):
        try:
            strings.append(item.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise InvalidArgument(
                f"{tensor.name}[{position}]: not UTF-8 ({error.reason})"
            ) from None
    return strings


def _split_raw_bytes(name: str, raw: bytes) -> list[bytes]:
    items, offset = [], 0
    while offset < len(raw):
        if offset + _LENGTH.size > len(raw):
            raise InvalidArgument(f"{name}: raw BYTES end inside a 4-byte length prefix")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if offset + length > len(raw):
            raise InvalidArgument(f"{name}: a raw BYTES element runs past the end")
        items.append(raw[offset : offset + length])
        offset += length
    return items


def float_parameter(parameters: Mapping[str, v2.InferParameter], name: str) -> float | None:
    """An optional number among a request's ``parameters`` (double or integer)."""
    if name not in parameters:
        return None
    parameter = parameters[name]
    choice = parameter.WhichOneof("parameter_choice")
    if choice not in ("double_param", "int64_param", "uint64_param"):
        raise InvalidArgument(f"parameters.{name}: must be a double parameter")
    return float(getattr(parameter, str(choice)))


def raw_bytes(strings: list[str]) -> bytes:
    """BYTES elements in the raw layout: each a 4-byte little-endian length, then the bytes."""
    parts = []
    for text in strings:
        data = text.encode("utf-8")
        parts += [_LENGTH.pack(len(data)), data]
    return b"".join(parts)


def infer_response(
    request: Request,
    model: tuple[str, str],
    labels: tuple[str, ...],
    probabilities: FloatArray,
    abstentions: Sequence[int],
    music: Sequence[float] | None = None,
) -> v2.ModelInferResponse:
    """Every output, raw, or those the request names: ``PROBABILITIES`` (FP32, [N, C], in
    ``labels`` order), ``LABEL`` (BYTES, [N], the top genre of each row), ``ABSTENTION`` (BYTES,
    [N]) and, for audio models, ``MUSIC_PROBABILITY`` (FP32, [N])."""
    rows, classes = probabilities.shape
    tensor = v2.ModelInferResponse.InferOutputTensor
    top = [labels[int(i)] for i in np.argmax(probabilities, axis=1)]
    reasons = [Abstention(value).reason for value in abstentions]
    produced = {
        PROBABILITIES: (
            tensor(name=PROBABILITIES, datatype="FP32", shape=[rows, classes]),
            np.ascontiguousarray(probabilities, dtype="<f4").tobytes(),
        ),
        LABEL: (tensor(name=LABEL, datatype="BYTES", shape=[rows]), raw_bytes(top)),
        ABSTENTION: (tensor(name=ABSTENTION, datatype="BYTES", shape=[rows]), raw_bytes(reasons)),
    }
    if music is not None:
        produced[MUSIC_PROBABILITY] = (
            tensor(name=MUSIC_PROBABILITY, datatype="FP32", shape=[rows]),
            np.asarray(music, dtype="<f4").tobytes(),
        )
    wanted = [output.name for output in request.outputs] or list(produced)
    unknown = [name for name in wanted if name not in produced]
    if unknown:
        raise InvalidArgument(
            f"outputs: unknown output {unknown[0]!r} (the model gives {', '.join(produced)})"
        )
    name, version = model
    response = v2.ModelInferResponse(model_name=name, model_version=version, id=request.id)
    for output in wanted:
        meta, raw = produced[output]
        response.outputs.add().CopyFrom(meta)
        response.raw_output_contents.append(raw)
    return response
