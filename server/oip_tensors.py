"""Tensors of the Open Inference Protocol (KServe v2) in and out, as numpy arrays and strings.

A request carries each input either as ``raw_input_contents`` (one bytes entry per input, in the
order of ``inputs``: little-endian values, BYTES as 4-byte length-prefixed strings) or as typed
``contents``; a caller uses one or the other for the whole request, as Triton requires. Outputs
always go back raw, as ``tritonclient`` reads them fastest. Every error names the tensor.
"""

from __future__ import annotations

import struct

import numpy as np

from genre.inference import grpc_service_pb2 as v2
from server.errors import InvalidArgument
from server.features import FloatArray

Request = v2.ModelInferRequest
InputTensor = v2.ModelInferRequest.InferInputTensor
_LENGTH = struct.Struct("<I")


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


def fp32_values(request: Request, index: int, tensor: InputTensor) -> FloatArray:
    """The tensor's values, flat, checked against its datatype and shape."""
    if tensor.datatype != "FP32":
        raise InvalidArgument(f"{tensor.name}: datatype must be FP32, got {tensor.datatype!r}")
    count = element_count(tensor)
    if request.raw_input_contents:
        raw = request.raw_input_contents[index]
        if len(raw) != 4 * count:
            raise InvalidArgument(
                f"{tensor.name}: {len(raw)} raw bytes for shape {list(tensor.shape)} "
                f"({4 * count} expected for FP32)"
            )
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    values = np.array(tensor.contents.fp32_contents, dtype=np.float32)
    if values.size != count:
        raise InvalidArgument(
            f"{tensor.name}: {values.size} fp32_contents for shape {list(tensor.shape)}"
        )
    return values


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
    try:
        return [item.decode("utf-8") for item in items]
    except UnicodeDecodeError as error:
        raise InvalidArgument(f"{tensor.name}: a string is not UTF-8 ({error.reason})") from None


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


def raw_bytes(strings: list[str]) -> bytes:
    """BYTES elements in the raw layout: each a 4-byte little-endian length, then the bytes."""
    parts = []
    for text in strings:
        data = text.encode("utf-8")
        parts += [_LENGTH.pack(len(data)), data]
    return b"".join(parts)


def output_tensors(
    probabilities: FloatArray, labels: list[str]
) -> list[tuple[v2.ModelInferResponse.InferOutputTensor, bytes]]:
    """Every model's two outputs, raw: ``PROBABILITIES`` (FP32, [N, C]) and ``LABEL`` (BYTES,
    [N], the top genre of each row)."""
    rows, classes = probabilities.shape
    tensor = v2.ModelInferResponse.InferOutputTensor
    return [
        (
            tensor(name="PROBABILITIES", datatype="FP32", shape=[rows, classes]),
            np.ascontiguousarray(probabilities, dtype="<f4").tobytes(),
        ),
        (tensor(name="LABEL", datatype="BYTES", shape=[rows]), raw_bytes(labels)),
    ]
