"""Audio over the Open Inference Protocol: the ``AUDIO`` tensor and ``sample_rate`` parameter
turned into what ``ClassifyAudioStream`` already serves, and its answers turned back.

``AUDIO`` is mono, shape [1, S]: FP32 in -1..1 or INT16, raw or typed. A request names its rate
in the parameter ``sample_rate`` (int64). The windows, hop, resampling and track answer are those
of genre.v1's stream (``server.streaming.session``), so both protocols give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from genre.inference import grpc_service_pb2 as v2
from genre.v1 import genre_pb2
from server.abstention import check_min_probability, check_silence_dbfs
from server.errors import InvalidArgument
from server.features import FloatArray
from server.oip.tensors import InputTensor, Request, float_parameter, numeric_values
from server.streaming.session import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, StreamSession

AUDIO = "AUDIO"
ENCODINGS = {"FP32": (genre_pb2.PCM_F32LE, "<f4"), "INT16": (genre_pb2.PCM_S16LE, "<i2")}


def sample_rate_of(parameters: Mapping[str, v2.InferParameter], where: str) -> int:
    if "sample_rate" not in parameters:
        raise InvalidArgument(f"{where}.sample_rate: required (int64, the audio's rate in Hz)")
    parameter = parameters["sample_rate"]
    if parameter.WhichOneof("parameter_choice") not in ("int64_param", "uint64_param"):
        raise InvalidArgument(f"{where}.sample_rate: must be an int64 parameter")
    rate = int(getattr(parameter, str(parameter.WhichOneof("parameter_choice"))))
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InvalidArgument(
            f"{where}.sample_rate: {rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )
    return rate


def audio_config(
    served_name: str,
    version: str,
    sample_rate: int,
    datatype: str,
    parameters: Mapping[str, v2.InferParameter],
) -> genre_pb2.StreamConfig:
    """The genre.v1 stream config of a clip or sequence, with the request's abstention
    parameters ``min_probability`` and ``silence_threshold_dbfs`` where it sets them."""
    config = genre_pb2.StreamConfig(
        model=genre_pb2.ModelRef(name=served_name, version=version),
        sample_rate=sample_rate,
        encoding=ENCODINGS[datatype][0],
        channels=1,
    )
    threshold = float_parameter(parameters, "min_probability")
    if threshold is not None:
        config.min_probability = check_min_probability(threshold, "parameters.min_probability")
    silence = float_parameter(parameters, "silence_threshold_dbfs")
    if silence is not None:
        config.silence_threshold_dbfs = check_silence_dbfs(
            silence, "parameters.silence_threshold_dbfs"
        )
    return config


def answer_of(
    classification: genre_pb2.Classification, labels: tuple[str, ...]
) -> tuple[FloatArray, list[int], list[float]]:
    """One answer as the v2 outputs carry it: probabilities in label order, its abstention and
    its music probability (NaN where the model cannot say)."""
    music = (
        classification.music_probability
        if classification.HasField("music_probability")
        else math.nan
    )
    return probabilities_of(classification, labels), [classification.abstention], [music]


def audio_bytes(request: Request, index: int, tensor: InputTensor) -> bytes:
    """The tensor's samples as little-endian PCM of its datatype, checked against its shape."""
    if tensor.datatype not in ENCODINGS:
        raise InvalidArgument(f"{AUDIO}: datatype must be FP32 or INT16, got {tensor.datatype!r}")
    if len(tensor.shape) != 2 or tensor.shape[0] != 1:
        raise InvalidArgument(f"{AUDIO}: shape must be [1, S] (mono), got {list(tensor.shape)}")
    return numeric_values(request, index, tensor).astype(ENCODINGS[tensor.datatype][1]).tobytes()


async def feed_all(session: StreamSession, data: bytes, max_chunk_bytes: int, width: int) -> None:
    """Feeds a whole clip in chunks the stream limits allow, whole samples each."""
    step = max(width, max_chunk_bytes - max_chunk_bytes % width)
    for offset in range(0, len(data), step):
        await session.feed(data[offset : offset + step])


def probabilities_of(
    classification: genre_pb2.Classification, labels: tuple[str, ...]
) -> FloatArray:
    """A ranked Classification back as probabilities in label order."""
    by_genre = {score.genre: score.probability for score in classification.scores}
    return np.array([[by_genre.get(label, 0.0) for label in labels]], dtype=np.float32)
