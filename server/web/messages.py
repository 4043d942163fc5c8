"""The WebSocket's JSON, turned into the ``ClassifyAudioStream`` messages it stands for and back.

The page speaks in text frames of JSON and binary frames of PCM:

- first ``{"type": "config", "model": {"name": ..., "version": ...}, "sample_rate": 22050,
  "encoding": "PCM_F32LE", "channels": 1, ...}``: the fields of ``genre.v1.StreamConfig`` under
  their ``.proto`` names (any field that message has, so one added there works here too), plus
  an optional ``token`` that the bridge takes out before anything else sees the message;
- then binary frames, each an ``AudioChunk``'s ``data`` (any size, split anywhere);
- then ``{"type": "end"}``, the half-close after which the final answer comes.

Every value is checked here for its JSON type, naming the field (``config.sample_rate: must be
an integer, got "22050"``); the values themselves are checked by
``server.streaming.session.plan_stream``,
exactly as for a gRPC caller. Answers carry the keys of the client's ``StreamUpdate`` (the
``genre-client stream --json`` vocabulary), with abstentions as lower-case names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from genre.v1 import genre_pb2
from server.errors import InvalidArgument

Request = genre_pb2.ClassifyAudioStreamRequest
CONFIG_FIELDS = genre_pb2.StreamConfig.DESCRIPTOR.fields_by_name
ENVELOPE = ("type", "token")  # keys of the first message that are not StreamConfig fields
END = "end"
_INTEGERS = {FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32}
_INTEGERS |= {FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64}
_FLOATS = (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE)


def decode_text(text: str) -> dict[str, Any]:
    """A text frame as a JSON object, or INVALID_ARGUMENT saying what it was instead."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise InvalidArgument(f"message: a text frame must be a JSON object ({error})") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"message: a text frame must be a JSON object, got {text[:40]!r}")
    kind = value.get("type", "config")
    if kind not in ("config", END):
        raise InvalidArgument(f'type: must be "config" or "end", got {kind!r}')
    return value


def config_request(message: Mapping[str, Any]) -> Request:
    """The first message as the ``config`` a gRPC client would have sent."""
    config = genre_pb2.StreamConfig()
    for key, value in message.items():
        if key in ENVELOPE:
            continue
        field = CONFIG_FIELDS.get(key)
        if field is None:
            known = ", ".join(sorted((*CONFIG_FIELDS, *ENVELOPE)))
            raise InvalidArgument(f"config.{key}: no such field (fields: {known})")
        _set(config, field, value, f"config.{key}")
    return Request(config=config)


def _set(config: genre_pb2.StreamConfig, field: FieldDescriptor, value: Any, where: str) -> None:
    if field.message_type is genre_pb2.ModelRef.DESCRIPTOR:
        if not isinstance(value, dict) or not set(value) <= {"name", "version"}:
            raise InvalidArgument(f'{where}: must be {{"name": ..., "version": ...}}')
        for part in ("name", "version"):
            if not isinstance(value.get(part, ""), str):
                raise InvalidArgument(f"{where}.{part}: must be a string")
        config.model.CopyFrom(genre_pb2.ModelRef(**value))
    elif field.enum_type is not None:
        names = [item.name for item in field.enum_type.values if item.number != 0]
        if value not in names:
            raise InvalidArgument(f"{where}: must be {' or '.join(names)}, got {value!r}")
        setattr(config, field.name, field.enum_type.values_by_name[value].number)
    elif field.cpp_type in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"{where}: must be a non-negative integer, got {value!r}")
        setattr(config, field.name, value)
    elif field.cpp_type in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgument(f"{where}: must be a number, got {value!r}")
        setattr(config, field.name, float(value))
    else:  # a field kind the page has no use for yet: refuse rather than guess
        raise InvalidArgument(f"{where}: not settable over the WebSocket")


def abstention_name(classification: genre_pb2.Classification) -> str:
    """``NOT_MUSIC`` -> ``"not_music"``: the names the client and the page use."""
    return genre_pb2.Abstention.Name(classification.abstention).lower()


def _scores(classification: genre_pb2.Classification) -> list[dict[str, Any]]:
    return [
        {"genre": score.genre, "probability": round(float(score.probability), 6)}
        for score in classification.scores
    ]


def _music(classification: genre_pb2.Classification) -> float | None:
    if not classification.HasField("music_probability"):
        return None
    return round(float(classification.music_probability), 6)


def answer(response: genre_pb2.ClassifyAudioStreamResponse, latency_ms: float) -> str:
    """One window's answer as the page reads it. ``latency_ms``: from the arrival of the frame
    that completed the window (or of ``end``, for the final answer) to this answer."""
    return json.dumps(
        {
            "type": "window",
            "model": response.model.name,
            "version": response.model.version,
            "window_start": round(float(response.window_start_seconds), 6),
            "window_end": round(float(response.window_end_seconds), 6),
            "window": _scores(response.window),
            "track": _scores(response.track),
            "window_abstention": abstention_name(response.window),
            "track_abstention": abstention_name(response.track),
            "window_music_probability": _music(response.window),
            "track_music_probability": _music(response.track),
            "final": response.final,
            "padded": response.padded,
            "audio_seconds": round(float(response.audio_seconds), 6),
            "latency_ms": round(latency_ms, 3),
        }
    )


def outcome(status: str, message: str, request_id: str) -> str:
    """The last text frame of every stream: ``OK``, or the status and message a gRPC caller
    would have read, with the call's request id (the one in its log line)."""
    kind = "end" if status == "OK" else "error"
    return json.dumps(
        {"type": kind, "status": status, "message": message, "request_id": request_id}
    )
