"""The WebSocket's JSON and the genre.v1 messages it stands for (``server.web.messages``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from genre.v1 import genre_pb2
from server.errors import InvalidArgument
from server.web.messages import answer, config_request, decode_text, outcome


def test_a_config_frame_is_the_stream_config_grpc_gets() -> None:
    request = config_request(
        {
            "type": "config",
            "token": "secret-token-not-a-field",
            "model": {"name": "m", "version": "2"},
            "sample_rate": 22050,
            "encoding": "PCM_F32LE",
            "channels": 1,
            "hop_seconds": 0.75,
            "top_k": 3,
            "min_probability": 0.4,
        }
    )
    assert request.config == genre_pb2.StreamConfig(
        model=genre_pb2.ModelRef(name="m", version="2"),
        sample_rate=22050,
        encoding=genre_pb2.PCM_F32LE,
        channels=1,
        hop_seconds=0.75,
        top_k=3,
        min_probability=0.4,
    )
    assert "secret" not in str(request)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"sample_rate": "22050"},
            "config.sample_rate: must be a non-negative integer, got '22050'",
        ),
        ({"sample_rate": True}, "config.sample_rate: must be a non-negative integer"),
        ({"channels": -1}, "config.channels: must be a non-negative integer, got -1"),
        ({"hop_seconds": "1"}, "config.hop_seconds: must be a number"),
        ({"encoding": "MP3"}, "config.encoding: must be PCM_S16LE or PCM_F32LE, got 'MP3'"),
        ({"model": "m"}, 'config.model: must be {"name": ..., "version": ...}'),
        ({"model": {"name": 3}}, "config.model.name: must be a string"),
        ({"tempo": 120}, "config.tempo: no such field"),
    ],
)
def test_each_bad_value_is_named(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        config_request(fields)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "message: a text frame must be a JSON object"),
        ("[1]", "message: a text frame must be a JSON object, got '[1]'"),
        ('{"type": "audio"}', 'type: must be "config" or "end", got \'audio\''),
    ],
)
def test_a_text_frame_must_be_a_config_or_the_end(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_text(text)
    assert message in str(caught.value)


def test_an_answer_carries_both_abstentions_by_name_and_its_latency() -> None:
    response = genre_pb2.ClassifyAudioStreamResponse(
        model=genre_pb2.ModelRef(name="m", version="3"),
        window_start_seconds=1.5,
        window_end_seconds=4.5,
        window=genre_pb2.Classification(
            scores=[genre_pb2.GenreScore(genre="rock", probability=0.5)],
            abstention=genre_pb2.NOT_MUSIC,
            music_probability=0.25,
        ),
        track=genre_pb2.Classification(scores=[genre_pb2.GenreScore(genre="jazz", probability=1)]),
        final=True,
        audio_seconds=4.5,
    )
    decoded = json.loads(answer(response, latency_ms=12.3456))
    assert decoded == {
        "type": "window", "model": "m", "version": "3", "window_start": 1.5, "window_end": 4.5,
        "window": [{"genre": "rock", "probability": 0.5}],
        "track": [{"genre": "jazz", "probability": 1.0}],
        "window_abstention": "not_music", "track_abstention": "answered",
        "window_music_probability": 0.25, "track_music_probability": None,
        "final": True, "padded": False, "audio_seconds": 4.5, "latency_ms": 12.346,
    }  # fmt: skip


def test_the_last_frame_says_end_or_error() -> None:
    assert json.loads(outcome("OK", "", "id-1"))["type"] == "end"
    assert json.loads(outcome("NOT_FOUND", "model.name: no", "id-2")) == {
        "type": "error", "status": "NOT_FOUND", "message": "model.name: no", "request_id": "id-2"
    }  # fmt: skip
