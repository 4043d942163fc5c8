"""One frozen configuration object, read from flags and ``GENRE_<SETTING>`` environment variables.

Precedence: command-line flag, then environment variable, then the default. Every field of
``ServerConfig`` is a setting; its environment variable is ``GENRE_`` plus the upper-cased field
name (``grpc_port`` -> ``GENRE_GRPC_PORT``). Defaults were chosen by measurement;
docs/operations.md lists every setting and why its default is what it is.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "GENRE_"
# The allowed values of the settings that take one of a few words: listed here only.
DEVICES = ("auto", "cpu", "cuda")
INFERENCE_PROCESS_MODES = ("auto", "on", "off")
PRECISIONS = ("float32", "bfloat16")
AUDIO_PRECISIONS = ("auto", "float32", "bfloat16")
GRAPH_MODES = ("auto", "off")
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server process can be told."""

    grpc_host: str = field(default="[::]", metadata={"help": "address the gRPC server binds"})
    grpc_port: int = field(default=50051, metadata={"help": "gRPC port (0 picks a free one)"})
    metrics_port: int = field(
        default=9464, metadata={"help": "HTTP port of Prometheus /metrics (0 picks a free one)"}
    )
    metrics_host: str = field(default="0.0.0.0", metadata={"help": "address /metrics binds"})
    http_port: int = field(
        default=0,
        metadata={
            "help": "port of the web page and its WebSocket bridge (0: off; make serve: 8080)"
        },
    )
    http_host: str = field(default="0.0.0.0", metadata={"help": "address the web page binds"})
    http_origins: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "comma-separated origins (https://host:port) whose pages may open the "
            "WebSocket, besides the page's own under an IP address or localhost; * allows any"
        },
    )
    model_repository: Path = field(
        default=REPOSITORY_ROOT / "models", metadata={"help": "model repository directory"}
    )
    models: tuple[str, ...] = field(
        default=(), metadata={"help": "comma-separated model names to load (empty: all found)"}
    )
    pinned_versions: tuple[str, ...] = field(
        default=(), metadata={"help": "comma-separated name=version defaults (else highest)"}
    )
    max_batch_size: int = field(default=256, metadata={"help": "rows per forward pass"})
    max_queue_delay_ms: float = field(
        default=5.0, metadata={"help": "longest wait for a batch to fill, in milliseconds"}
    )
    max_queue_rows: int = field(
        default=8192, metadata={"help": "rows waiting per model before RESOURCE_EXHAUSTED"}
    )
    inline_batch_ms: float = field(
        default=0.0,
        metadata={
            "help": "a batch expected to compute faster than this runs on the event loop's "
            "own thread instead of the inference thread (0: always the thread)"
        },
    )
    max_rows_per_request: int = field(
        default=4096, metadata={"help": "rows one call may carry (more: RESOURCE_EXHAUSTED)"}
    )
    audio_max_batch_size: int = field(
        default=32, metadata={"help": "audio windows per forward pass"}
    )
    audio_max_queue_windows: int = field(
        default=512, metadata={"help": "audio windows waiting per model before RESOURCE_EXHAUSTED"}
    )
    max_streams: int = field(
        default=256,
        metadata={"help": "concurrent ClassifyAudioStream calls (more: RESOURCE_EXHAUSTED)"},
    )
    stream_admission_load: float = field(
        default=0.5,
        metadata={
            "help": "share of the audio models' measured windows/s that admitted streams may "
            "ask for; a stream past it gets RESOURCE_EXHAUSTED (0: count streams only)"
        },
    )
    stream_latency_bound_ms: float = field(
        default=250.0,
        metadata={
            "help": "window latency bound of live streams: while the p99 of the last 2 s of "
            "windows plus the event loop's median lag is past it, new streams get "
            "RESOURCE_EXHAUSTED (0: off)"
        },
    )
    audio_windows_per_second: float = field(
        default=0.0,
        metadata={
            "help": "an audio version's capacity for admission, windows/s (0: measured when "
            "the version loads)"
        },
    )
    max_chunk_bytes: int = field(
        default=1024 * 1024, metadata={"help": "largest audio chunk accepted"}
    )
    max_stream_seconds: float = field(
        default=3600.0, metadata={"help": "audio one stream may carry, in seconds"}
    )
    stream_idle_timeout_seconds: float = field(
        default=30.0, metadata={"help": "a stream with no message for this long is ended"}
    )
    silence_threshold_dbfs: float = field(
        default=-60.0,
        metadata={
            "help": "audio windows quieter than this RMS level (dBFS) are SILENCE, unless a "
            "stream's config sets its own (-inf: never)"
        },
    )
    min_probability: float = field(
        default=-1.0,
        metadata={
            "help": "answers whose top probability is under this are UNCERTAIN, unless a call "
            "sets its own (-1: each model's own, chosen on validation data; 0: never)"
        },
    )
    max_message_bytes: int = field(
        default=16 * 1024 * 1024, metadata={"help": "largest gRPC message accepted or sent"}
    )
    max_connection_age_seconds: float = field(
        default=300.0, metadata={"help": "close connections after this age so clients rebalance"}
    )
    drain_grace_seconds: float = field(
        default=20.0, metadata={"help": "time in-flight work gets to finish on SIGTERM"}
    )
    reload_interval_seconds: float = field(
        default=0.0, metadata={"help": "poll the repository for new versions (0: only SIGHUP)"}
    )
    tls_cert_file: str = field(
        default="", metadata={"help": "PEM certificate chain; with tls_key_file turns on TLS"}
    )
    tls_key_file: str = field(default="", metadata={"help": "PEM private key of the certificate"})
    tls_client_ca_file: str = field(
        default="", metadata={"help": "PEM CA bundle; when set, clients must present a cert (mTLS)"}
    )
    auth_tokens_file: str = field(
        default="",
        metadata={"help": "bearer tokens, one per line: TOKEN [Method,Method] (empty: no auth)"},
    )
    auth_exempt_services: tuple[str, ...] = field(
        default=(
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
            "grpc.reflection.v1.ServerReflection",
            # the v2 probes, which tell what health tells (server/auth.py)
            "inference.GRPCInferenceService/ServerLive",
            "inference.GRPCInferenceService/ServerReady",
            "inference.GRPCInferenceService/ModelReady",
        ),
        metadata={
            "help": "comma-separated services (or Service/Method, one method) callable "
            "without a token"
        },
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    features_precision: str = field(
        default="float32",
        metadata={
            "help": "float32 or bfloat16 for feature MLPs (bfloat16: faster on CPUs with "
            "native bfloat16 and GPUs; checked against float32 when a version loads)"
        },
    )
    audio_precision: str = field(
        default="auto",
        metadata={
            "help": "auto (bfloat16 on a GPU where probabilities stay within 1e-3 of float32's "
            "on the load-time check, else float32), float32 or bfloat16 for audio models"
        },
    )
    cuda_graphs: str = field(
        default="auto",
        metadata={
            "help": "auto replays audio models as CUDA graphs on a GPU (kept only if they match "
            "the eager pass); off never"
        },
    )
    workers: int = field(
        default=0,
        metadata={
            "help": "serving processes sharing the gRPC port, each with its own batchers "
            "(0: one per CPU the process may use, up to 8; 1: a single process)"
        },
    )
    inference_process: str = field(
        default="auto",
        metadata={
            "help": "with several workers: on runs the models in one inference process per "
            "device that every worker feeds through shared memory; off gives each worker its "
            "own copy (auto: on where a GPU is present, off on CPU nodes; docs/operations.md, "
            "'Worker processes')"
        },
    )
    inference_arena_mib: int = field(
        default=64,
        metadata={"help": "shared memory per worker for requests waiting on the inference process"},
    )
    torch_threads: int = field(
        default=0,
        metadata={
            "help": "intra-op threads per serving process (0: its share of the CPUs minus one, "
            "1 to 4)"
        },
    )
    log_format: str = field(default="auto", metadata={"help": "auto, json or console"})
    log_level: str = field(default="info", metadata={"help": "debug, info, warning or error"})
    otlp_endpoint: str = field(
        default="",
        metadata={
            "help": "OpenTelemetry collector to export traces to over OTLP/gRPC, "
            "http://host:4317 (plaintext) or https://host:4317 (TLS); empty: no spans "
            "(a caller's traceparent still puts its trace_id in the call's log line)"
        },
    )
    access_log_sample: float = field(
        default=1.0,
        metadata={
            "help": "share of successful calls that get an access log line, e.g. 0.01 for one "
            "in a hundred (failed calls always do; 0: none)"
        },
    )

    def __post_init__(self) -> None:
        for name in ("grpc_port", "metrics_port", "http_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"{name} must be in 0..65535, got {port}")
        positive = (
            "max_batch_size",
            "max_queue_rows",
            "max_rows_per_request",
            "max_message_bytes",
            "audio_max_batch_size",
            "audio_max_queue_windows",
            "max_streams",
            "max_chunk_bytes",
            "max_stream_seconds",
            "stream_idle_timeout_seconds",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        non_negative = (
            "max_queue_delay_ms",
            "inline_batch_ms",
            "drain_grace_seconds",
            "reload_interval_seconds",
            "max_connection_age_seconds",
            "torch_threads",
            "workers",
            "stream_admission_load",
            "stream_latency_bound_ms",
            "audio_windows_per_second",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if not (self.min_probability == -1.0 or 0.0 <= self.min_probability <= 1.0):
            raise ValueError(
                f"min_probability must be -1 (each model's own) or in [0, 1], "
                f"got {self.min_probability}"
            )
        if not 0.0 <= self.access_log_sample <= 1.0:
            raise ValueError(f"access_log_sample must be in [0, 1], got {self.access_log_sample}")
        if not self.silence_threshold_dbfs <= 0.0:
            raise ValueError(
                f"silence_threshold_dbfs must be at most 0 dBFS, got {self.silence_threshold_dbfs}"
            )
        if self.max_queue_rows < self.max_batch_size:
            raise ValueError("max_queue_rows must be at least max_batch_size")
        if self.audio_max_queue_windows < self.audio_max_batch_size:
            raise ValueError("audio_max_queue_windows must be at least audio_max_batch_size")
        for name, allowed in (
            ("features_precision", PRECISIONS),
            ("audio_precision", AUDIO_PRECISIONS),
            ("cuda_graphs", GRAPH_MODES),
            ("device", DEVICES),
            ("inference_process", INFERENCE_PROCESS_MODES),
            ("log_format", LOG_FORMATS),
            ("log_level", LOG_LEVELS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        if self.otlp_endpoint and not self.otlp_endpoint.startswith(("http://", "https://")):
            raise ValueError(
                "otlp_endpoint must start with http:// (plaintext) or https:// (TLS), "
                f"got {self.otlp_endpoint!r}"
            )
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file must be given together")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise ValueError("tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file")
        for entry in self.pinned_versions:
            name, _, version = entry.partition("=")
            if not name or not version.isdigit():
                raise ValueError(f"pinned_versions entries look like name=3, got {entry!r}")

    @property
    def pins(self) -> dict[str, int]:
        return {
            name: int(version)
            for name, _, version in (entry.partition("=") for entry in self.pinned_versions)
        }

    @classmethod
    def from_sources(
        cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> ServerConfig:
        """Flags override environment variables, which override defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        hints = get_type_hints(cls)
        for item in fields(cls):
            raw = environ.get(ENV_PREFIX + item.name.upper())
            if raw is not None and raw != "":
                values[item.name] = _parse(hints[item.name], raw, item.name)
        parsed = _build_parser(hints).parse_args(list(argv) if argv is not None else [])
        for name, raw in vars(parsed).items():
            if raw is not None:
                values[name] = _parse(hints[name], raw, name)
        return cls(**values)

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **changes)


def _build_parser(hints: Mapping[str, Any]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genre-serve",
        description="Serve genre models over gRPC. Each flag also reads GENRE_<FLAG>.",
    )
    for item in fields(ServerConfig):
        flag = "--" + item.name.replace("_", "-")
        env_name = ENV_PREFIX + item.name.upper()
        parser.add_argument(
            flag,
            dest=item.name,
            default=None,
            help=f"{item.metadata.get('help', '')} [env {env_name}, default {item.default!r}]",
        )
    return parser


def _parse(kind: Any, raw: str, name: str) -> Any:
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(raw).expanduser()
        if kind == tuple[str, ...]:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw
    except ValueError as error:
        raise ValueError(f"setting {name}: cannot parse {raw!r} ({error})") from error
