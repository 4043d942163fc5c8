"""Stream planning and bookkeeping (``server.streaming.session``): a config is checked field by
field
against the audio model it names, slots are bounded, and the first message must be a config."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from genre.v1 import genre_pb2
from server.config import ServerConfig
from server.errors import FailedPrecondition, InvalidArgument, Overloaded
from server.metrics import ServerMetrics
from server.registry import ModelRegistry
from server.streaming.session import StreamLimits, StreamSlots, plan_stream, require_config
from tests.support.checkpoints import write_tiny_audio_model, write_tiny_model
from tests.support.harness import cpu_registry


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[ModelRegistry]:
    write_tiny_audio_model(tmp_path)
    write_tiny_model(tmp_path)
    registry = cpu_registry(tmp_path)
    await registry.reload()
    yield registry
    await registry.close()


def config(**fields: object) -> genre_pb2.StreamConfig:
    values: dict[str, object] = {
        "model": genre_pb2.ModelRef(name="tiny-audio"),
        "sample_rate": 16000,
        "encoding": genre_pb2.PCM_S16LE,
        "channels": 2,
    }
    values.update(fields)
    return genre_pb2.StreamConfig(**values)  # type: ignore[arg-type]


async def test_a_plan_converts_the_model_window_to_the_stream_rate(
    registry: ModelRegistry,
) -> None:
    plan = plan_stream(config(hop_seconds=0.25), registry)
    frontend = plan.audio.frontend_config
    assert plan.window_samples == round(frontend.window_seconds * 16000)
    assert plan.hop_samples == 4000
    assert (plan.channels, plan.sample_rate) == (2, 16000)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": genre_pb2.ModelRef(name="tiny-mlp")}, "is a features model"),
        ({"sample_rate": 4000}, "config.sample_rate"),
        ({"encoding": 0}, "config.encoding: must be PCM_S16LE or PCM_F32LE"),
        ({"channels": 3}, "config.channels"),
        ({"hop_seconds": 5.0}, "config.hop_seconds"),
    ],
)
async def test_a_bad_config_field_is_named(
    registry: ModelRegistry, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        plan_stream(config(**fields), registry)


def test_slots_refuse_one_past_the_limit() -> None:
    slots = StreamSlots(1, ServerMetrics.create())
    with slots.hold(), pytest.raises(Overloaded, match="limit 1"), slots.hold():
        pass
    with slots.hold():  # released again
        pass


def test_the_first_message_must_be_the_config() -> None:
    audio = genre_pb2.ClassifyAudioStreamRequest(audio=genre_pb2.AudioChunk(data=b"\0\0"))
    with pytest.raises(FailedPrecondition, match="first message"):
        require_config(audio)
    with pytest.raises(FailedPrecondition):
        require_config(None)
    wrapped = genre_pb2.ClassifyAudioStreamRequest(config=config())
    assert require_config(wrapped).sample_rate == 16000


def test_limits_come_from_the_server_config() -> None:
    limits = StreamLimits.from_config(ServerConfig(max_streams=3, stream_idle_timeout_seconds=2))
    assert (limits.max_streams, limits.idle_timeout_seconds) == (3, 2)
    assert limits.max_chunk_bytes == ServerConfig().max_chunk_bytes
