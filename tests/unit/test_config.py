"""ServerConfig: defaults, GENRE_* variables, flags, and refusal of bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ServerConfig


def test_defaults_are_the_documented_ports() -> None:
    config = ServerConfig.from_sources([], {})
    assert config.grpc_port == 50051
    assert config.metrics_port == 9464
    assert config.model_repository.name == "models"


def test_environment_variables_set_every_kind_of_setting() -> None:
    config = ServerConfig.from_sources(
        [],
        {
            "GENRE_GRPC_PORT": "6000",
            "GENRE_METRICS_PORT": "6001",
            "GENRE_MODEL_REPOSITORY": "/srv/models",
            "GENRE_MAX_QUEUE_DELAY_MS": "0.5",
            "GENRE_MODELS": "a, b",
            "GENRE_PINNED_VERSIONS": "a=3",
            "UNRELATED": "x",
        },
    )
    assert (config.grpc_port, config.metrics_port) == (6000, 6001)
    assert config.model_repository == Path("/srv/models")
    assert config.max_queue_delay_ms == 0.5
    assert config.models == ("a", "b")
    assert config.pins == {"a": 3}


def test_flags_override_environment() -> None:
    config = ServerConfig.from_sources(
        ["--grpc-port", "7000", "--log-format", "json"], {"GENRE_GRPC_PORT": "6000"}
    )
    assert config.grpc_port == 7000
    assert config.log_format == "json"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"GENRE_GRPC_PORT": "http"}, "grpc_port"),
        ({"GENRE_GRPC_PORT": "70000"}, "grpc_port"),
        ({"GENRE_MAX_BATCH_SIZE": "0"}, "max_batch_size"),
        ({"GENRE_MAX_BATCH_SIZE": "512", "GENRE_MAX_QUEUE_ROWS": "100"}, "max_queue_rows"),
        ({"GENRE_DEVICE": "tpu"}, "device"),
        ({"GENRE_PINNED_VERSIONS": "a=latest"}, "pinned_versions"),
        ({"GENRE_DRAIN_GRACE_SECONDS": "-1"}, "drain_grace_seconds"),
        # without a scheme the exporter would pick TLS or not from OTEL_* variables, silently
        ({"GENRE_OTLP_ENDPOINT": "collector:4317"}, "otlp_endpoint.*http://"),
    ],
)
def test_bad_settings_are_refused_by_name(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerConfig.from_sources([], environ)


def test_config_is_frozen() -> None:
    config = ServerConfig()
    with pytest.raises(AttributeError):
        config.grpc_port = 1  # type: ignore[misc]
