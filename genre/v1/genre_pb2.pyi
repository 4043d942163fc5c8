from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    PCM_S16LE: _ClassVar[AudioEncoding]
    PCM_F32LE: _ClassVar[AudioEncoding]

class ModelKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_KIND_UNSPECIFIED: _ClassVar[ModelKind]
    FEATURES: _ClassVar[ModelKind]
    AUDIO: _ClassVar[ModelKind]
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
PCM_S16LE: AudioEncoding
PCM_F32LE: AudioEncoding
MODEL_KIND_UNSPECIFIED: ModelKind
FEATURES: ModelKind
AUDIO: ModelKind

class ModelRef(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class FeatureRow(_message.Message):
    __slots__ = ("features",)
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    features: _containers.ScalarMap[str, float]
    def __init__(self, features: _Optional[_Mapping[str, float]] = ...) -> None: ...

class DenseFeatures(_message.Message):
    __slots__ = ("feature_names", "values")
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, feature_names: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class ClassifyFeaturesRequest(_message.Message):
    __slots__ = ("model", "rows", "top_k", "dense")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    DENSE_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    rows: _containers.RepeatedCompositeFieldContainer[FeatureRow]
    top_k: int
    dense: DenseFeatures
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ..., rows: _Optional[_Iterable[_Union[FeatureRow, _Mapping]]] = ..., top_k: _Optional[int] = ..., dense: _Optional[_Union[DenseFeatures, _Mapping]] = ...) -> None: ...

class GenreScore(_message.Message):
    __slots__ = ("genre", "probability")
    GENRE_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    genre: str
    probability: float
    def __init__(self, genre: _Optional[str] = ..., probability: _Optional[float] = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("scores",)
    SCORES_FIELD_NUMBER: _ClassVar[int]
    scores: _containers.RepeatedCompositeFieldContainer[GenreScore]
    def __init__(self, scores: _Optional[_Iterable[_Union[GenreScore, _Mapping]]] = ...) -> None: ...

class ClassifyFeaturesResponse(_message.Message):
    __slots__ = ("model", "results")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    results: _containers.RepeatedCompositeFieldContainer[Classification]
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ..., results: _Optional[_Iterable[_Union[Classification, _Mapping]]] = ...) -> None: ...

class StreamConfig(_message.Message):
    __slots__ = ("model", "sample_rate", "encoding", "channels", "hop_seconds", "top_k")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    HOP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    sample_rate: int
    encoding: AudioEncoding
    channels: int
    hop_seconds: float
    top_k: int
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ..., sample_rate: _Optional[int] = ..., encoding: _Optional[_Union[AudioEncoding, str]] = ..., channels: _Optional[int] = ..., hop_seconds: _Optional[float] = ..., top_k: _Optional[int] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ClassifyAudioStreamRequest(_message.Message):
    __slots__ = ("config", "audio")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    config: StreamConfig
    audio: AudioChunk
    def __init__(self, config: _Optional[_Union[StreamConfig, _Mapping]] = ..., audio: _Optional[_Union[AudioChunk, _Mapping]] = ...) -> None: ...

class ClassifyAudioStreamResponse(_message.Message):
    __slots__ = ("model", "window_start_seconds", "window_end_seconds", "window", "track", "final", "padded", "audio_seconds")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    PADDED_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    window_start_seconds: float
    window_end_seconds: float
    window: Classification
    track: Classification
    final: bool
    padded: bool
    audio_seconds: float
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ..., window_start_seconds: _Optional[float] = ..., window_end_seconds: _Optional[float] = ..., window: _Optional[_Union[Classification, _Mapping]] = ..., track: _Optional[_Union[Classification, _Mapping]] = ..., final: _Optional[bool] = ..., padded: _Optional[bool] = ..., audio_seconds: _Optional[float] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FeatureSpec(_message.Message):
    __slots__ = ("name", "imputable")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMPUTABLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    imputable: bool
    def __init__(self, name: _Optional[str] = ..., imputable: _Optional[bool] = ...) -> None: ...

class AudioFrontEnd(_message.Message):
    __slots__ = ("sample_rate", "n_fft", "hop_length", "n_mels", "window_seconds", "default_hop_seconds")
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    N_FFT_FIELD_NUMBER: _ClassVar[int]
    HOP_LENGTH_FIELD_NUMBER: _ClassVar[int]
    N_MELS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_HOP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    sample_rate: int
    n_fft: int
    hop_length: int
    n_mels: int
    window_seconds: float
    default_hop_seconds: float
    def __init__(self, sample_rate: _Optional[int] = ..., n_fft: _Optional[int] = ..., hop_length: _Optional[int] = ..., n_mels: _Optional[int] = ..., window_seconds: _Optional[float] = ..., default_hop_seconds: _Optional[float] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class ModelVersionInfo(_message.Message):
    __slots__ = ("model", "kind", "labels", "features", "audio", "metrics", "split_protocol", "is_default", "created", "weights_sha256")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_SHA256_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    kind: ModelKind
    labels: _containers.RepeatedScalarFieldContainer[str]
    features: _containers.RepeatedCompositeFieldContainer[FeatureSpec]
    audio: AudioFrontEnd
    metrics: _containers.RepeatedCompositeFieldContainer[Metric]
    split_protocol: str
    is_default: bool
    created: str
    weights_sha256: str
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ..., kind: _Optional[_Union[ModelKind, str]] = ..., labels: _Optional[_Iterable[str]] = ..., features: _Optional[_Iterable[_Union[FeatureSpec, _Mapping]]] = ..., audio: _Optional[_Union[AudioFrontEnd, _Mapping]] = ..., metrics: _Optional[_Iterable[_Union[Metric, _Mapping]]] = ..., split_protocol: _Optional[str] = ..., is_default: _Optional[bool] = ..., created: _Optional[str] = ..., weights_sha256: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelVersionInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelVersionInfo, _Mapping]]] = ...) -> None: ...
