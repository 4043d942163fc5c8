"""Plain, frozen Python views of the server's answers, so callers never touch protobuf types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from genre.v1 import genre_pb2

ModelKind = Literal["features", "audio", "unspecified"]
Abstention = Literal["answered", "silence", "not_music", "uncertain"]
"""Whether to trust an answer's scores: "answered", or why not (``genre.v1.Abstention``)."""
Scores = list[tuple[str, float]]
"""(genre, probability) pairs, highest probability first."""

_ABSTENTIONS: dict[int, Abstention] = {
    genre_pb2.ANSWERED: "answered",
    genre_pb2.SILENCE: "silence",
    genre_pb2.NOT_MUSIC: "not_music",
    genre_pb2.UNCERTAIN: "uncertain",
}

_KINDS: dict[int, ModelKind] = {
    genre_pb2.FEATURES: "features",
    genre_pb2.AUDIO: "audio",
}


@dataclass(frozen=True)
class FeatureInfo:
    """One input of a features model; ``imputable`` ones may be left out of a row."""

    name: str
    imputable: bool


@dataclass(frozen=True)
class AudioFrontEndInfo:
    """How an audio model turns PCM into log-mel windows (torchaudio's parameter names)."""

    sample_rate: int
    n_fft: int
    hop_length: int
    n_mels: int
    window_seconds: float
    default_hop_seconds: float


@dataclass(frozen=True)
class ModelInfo:
    """One served model version, mirroring ``genre.v1.ModelVersionInfo``."""

    name: str
    version: str
    kind: ModelKind
    labels: tuple[str, ...]
    features: tuple[FeatureInfo, ...]
    metrics: dict[str, float]
    split_protocol: str
    is_default: bool
    audio: AudioFrontEndInfo | None = None
    created: str = ""
    weights_sha256: str = ""
    min_probability: float = 0.0
    detects_music: bool = False
    # Optional text inputs (name -> longest length in characters), e.g. {"title": 200}.
    text_features: dict[str, int] = field(default_factory=dict)

    @property
    def takes_titles(self) -> bool:
        return "title" in self.text_features

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names a row may carry, in the model's own column order."""
        return tuple(feature.name for feature in self.features)

    @classmethod
    def from_proto(cls, message: genre_pb2.ModelVersionInfo) -> ModelInfo:
        audio = None
        if message.HasField("audio"):
            front = message.audio
            audio = AudioFrontEndInfo(
                sample_rate=front.sample_rate,
                n_fft=front.n_fft,
                hop_length=front.hop_length,
                n_mels=front.n_mels,
                window_seconds=front.window_seconds,
                default_hop_seconds=front.default_hop_seconds,
            )
        return cls(
            name=message.model.name,
            version=message.model.version,
            kind=_KINDS.get(message.kind, "unspecified"),
            labels=tuple(message.labels),
            features=tuple(FeatureInfo(f.name, f.imputable) for f in message.features),
            metrics={metric.name: metric.value for metric in message.metrics},
            split_protocol=message.split_protocol,
            is_default=message.is_default,
            audio=audio,
            created=message.created,
            weights_sha256=message.weights_sha256,
            min_probability=float(message.min_probability),
            detects_music=message.detects_music,
            text_features={text.name: text.max_length for text in message.text_features},
        )


def scores_from_proto(classification: genre_pb2.Classification) -> Scores:
    """Scores sorted highest first; the contract promises the order, the client does not rely
    on it (a stable sort keeps the server's order among ties)."""
    pairs = [(score.genre, float(score.probability)) for score in classification.scores]
    return sorted(pairs, key=lambda pair: pair[1], reverse=True)


def abstention_from_proto(classification: genre_pb2.Classification) -> Abstention:
    """An enum value this client does not know yet reads as "uncertain": not to be trusted."""
    return _ABSTENTIONS.get(classification.abstention, "uncertain")


def music_probability_from_proto(classification: genre_pb2.Classification) -> float | None:
    if not classification.HasField("music_probability"):
        return None
    return float(classification.music_probability)


@dataclass(frozen=True)
class FeaturesResult:
    """The answer to one ClassifyFeatures call: one ranked list per input row, in input order."""

    model: str
    version: str
    predictions: list[Scores] = field(default_factory=list)
    abstentions: list[Abstention] = field(default_factory=list)
    """One per row: "answered", or "uncertain" when the top probability is under the threshold."""

    def top(self) -> list[str]:
        """Each row's most probable genre (every row has at least one score)."""
        return [row[0][0] for row in self.predictions]

    @classmethod
    def from_proto(cls, message: genre_pb2.ClassifyFeaturesResponse) -> FeaturesResult:
        return cls(
            model=message.model.name,
            version=message.model.version,
            predictions=[scores_from_proto(result) for result in message.results],
            abstentions=[abstention_from_proto(result) for result in message.results],
        )


@dataclass(frozen=True)
class StreamUpdate:
    """One answer on an audio stream: a window's scores and the running track verdict."""

    model: str
    version: str
    window_start: float
    window_end: float
    window: Scores
    track: Scores
    final: bool
    padded: bool
    audio_seconds: float
    window_abstention: Abstention = "answered"
    track_abstention: Abstention = "answered"
    window_music_probability: float | None = None
    track_music_probability: float | None = None

    @classmethod
    def from_proto(cls, message: genre_pb2.ClassifyAudioStreamResponse) -> StreamUpdate:
        return cls(
            model=message.model.name,
            version=message.model.version,
            window_start=float(message.window_start_seconds),
            window_end=float(message.window_end_seconds),
            window=scores_from_proto(message.window),
            track=scores_from_proto(message.track),
            final=message.final,
            padded=message.padded,
            audio_seconds=float(message.audio_seconds),
            window_abstention=abstention_from_proto(message.window),
            track_abstention=abstention_from_proto(message.track),
            window_music_probability=music_probability_from_proto(message.window),
            track_music_probability=music_probability_from_proto(message.track),
        )
