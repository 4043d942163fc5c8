"""Builds the contract's request messages from plain Python and numpy inputs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from genre.v1 import genre_pb2

Encoding = Literal["s16le", "f32le"]

# Left to inference: the enum's static type differs between protoc's and mypy-protobuf's stubs.
ENCODINGS = {
    "s16le": genre_pb2.PCM_S16LE,
    "f32le": genre_pb2.PCM_F32LE,
}
BYTES_PER_SAMPLE: dict[str, int] = {"s16le": 2, "f32le": 4}


def _check_top_k(top_k: int) -> None:
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 returns every genre), got {top_k}")


def _check_min_probability(min_probability: float | None) -> None:
    if min_probability is not None and not 0.0 <= min_probability <= 1.0:
        raise ValueError(
            f"min_probability must be in [0, 1] (None: the model's default), got {min_probability}"
        )


def features_request(
    model: str,
    rows: Sequence[Mapping[str, float]],
    *,
    version: str = "",
    top_k: int = 0,
    min_probability: float | None = None,
    titles: Sequence[str] | None = None,
) -> genre_pb2.ClassifyFeaturesRequest:
    """The named form: each row maps feature name to value; a missing name means "omitted".
    ``titles``: one track title per row ("" for none), for models that take one
    (``ModelInfo.text_features``)."""
    _check_top_k(top_k)
    _check_min_probability(min_probability)
    if not rows:
        raise ValueError("rows must hold at least one row")
    if titles is not None and len(titles) != len(rows):
        raise ValueError(f"titles: {len(titles)} titles for {len(rows)} rows (one per row)")
    texts = [{"title": title} if title else {} for title in titles or [""] * len(rows)]
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name=model, version=version),
        rows=[
            genre_pb2.FeatureRow(
                features={name: float(value) for name, value in row.items()}, text=text
            )
            for row, text in zip(rows, texts, strict=True)
        ],
        top_k=top_k,
        min_probability=min_probability,
    )


def dense_request(
    model: str,
    feature_names: Sequence[str],
    values: npt.ArrayLike,
    *,
    version: str = "",
    top_k: int = 0,
    min_probability: float | None = None,
) -> genre_pb2.ClassifyFeaturesRequest:
    """The dense form: ``values`` is ``(N, F)`` with columns in ``feature_names`` order.

    Values travel as float32, row-major, in one packed field. ``tolist()`` then ``extend`` is the
    fastest path protobuf offers (about 3x faster than extending from the array itself, which
    boxes every element as a numpy scalar: 0.2 s vs 0.7 s for 100k x 57 values).
    """
    _check_top_k(top_k)
    _check_min_probability(min_probability)
    matrix = np.ascontiguousarray(values, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"values must be 2-D (rows, features), got shape {matrix.shape}")
    if matrix.shape[1] != len(feature_names):
        raise ValueError(
            f"values has {matrix.shape[1]} columns but {len(feature_names)} feature names"
        )
    if matrix.shape[0] == 0:
        raise ValueError("values must hold at least one row")
    request = genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name=model, version=version),
        top_k=top_k,
        min_probability=min_probability,
    )
    request.dense.feature_names.extend(feature_names)
    request.dense.values.extend(matrix.ravel().tolist())
    return request


@dataclass(frozen=True)
class StreamSettings:
    """What the first message of an audio stream declares about the PCM that follows."""

    model: str
    sample_rate: int
    encoding: Encoding = "s16le"
    channels: int = 1
    hop_seconds: float = 0.0
    top_k: int = 0
    version: str = ""
    min_probability: float | None = None
    """Window and track answers under this top probability are "uncertain"; None: the model's."""
    silence_threshold_dbfs: float | None = None
    """Windows quieter than this are "silence"; None: the server's default."""

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {sorted(ENCODINGS)}, got {self.encoding!r}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be > 0 Hz, got {self.sample_rate}")
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if self.hop_seconds < 0:
            raise ValueError(f"hop_seconds must be >= 0 (0: model default), got {self.hop_seconds}")
        _check_top_k(self.top_k)
        _check_min_probability(self.min_probability)

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * self.channels * BYTES_PER_SAMPLE[self.encoding]

    def config_request(self) -> genre_pb2.ClassifyAudioStreamRequest:
        return genre_pb2.ClassifyAudioStreamRequest(
            config=genre_pb2.StreamConfig(
                model=genre_pb2.ModelRef(name=self.model, version=self.version),
                sample_rate=self.sample_rate,
                encoding=ENCODINGS[self.encoding],
                channels=self.channels,
                hop_seconds=self.hop_seconds,
                top_k=self.top_k,
                min_probability=self.min_probability,
                silence_threshold_dbfs=self.silence_threshold_dbfs,
            )
        )


def audio_request(data: bytes) -> genre_pb2.ClassifyAudioStreamRequest:
    return genre_pb2.ClassifyAudioStreamRequest(audio=genre_pb2.AudioChunk(data=data))


def stream_requests(
    settings: StreamSettings, chunks: Iterable[bytes]
) -> Iterator[genre_pb2.ClassifyAudioStreamRequest]:
    """The config message, then one message per non-empty chunk, in order."""
    yield settings.config_request()
    for chunk in chunks:
        if chunk:
            yield audio_request(chunk)
