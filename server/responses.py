"""Response messages built from what the models said and what the manifests say."""

from __future__ import annotations

from collections.abc import Sequence

from genre.v1 import genre_pb2
from server.abstention import resolve_min_probability
from server.features import FloatArray
from server.registry import ModelTable, ServedVersion
from server.signatures import AudioSignature, FeaturesSignature
from server.wire import results_encoder

# How ListModels names each kind of model (kinds: ``modelcore.manifest.KIND_PARTS``).
KIND_ENUM = {"features": genre_pb2.FEATURES, "audio": genre_pb2.AUDIO}


def features_response(
    served: ServedVersion,
    probabilities: FloatArray,
    top_k: int,
    abstentions: Sequence[int] = (),
) -> genre_pb2.ClassifyFeaturesResponse:
    """The response for ``(N, C)`` probabilities, results encoded straight to wire bytes
    (``wire``): a quarter of the cost of building score messages one by one, even for one row.
    Rows that abstain (``abstentions``, one per row or empty) are marked afterwards, one by one:
    only those rows pay for a message."""
    response = genre_pb2.ClassifyFeaturesResponse(
        model=genre_pb2.ModelRef(name=served.name, version=str(served.version))
    )
    response.MergeFromString(results_encoder(served.labels).encode(probabilities, top_k))
    for row, abstention in enumerate(abstentions):
        if abstention:
            response.results[row].abstention = abstention  # type: ignore[assignment]
    return response


def list_models_response(
    table: ModelTable, server_min_probability: float = -1.0
) -> genre_pb2.ListModelsResponse:
    """Every loaded version, the default of each model marked. ``server_min_probability``
    (``GENRE_MIN_PROBABILITY``, -1: none) replaces each model's own default threshold, as it
    does for calls."""
    return genre_pb2.ListModelsResponse(
        models=[
            describe_version(
                served, table.defaults.get(served.name) == served.version, server_min_probability
            )
            for served in table.all()
        ]
    )


def describe_version(
    served: ServedVersion, is_default: bool, server_min_probability: float = -1.0
) -> genre_pb2.ModelVersionInfo:
    manifest = served.manifest
    metrics = manifest.metrics
    info = genre_pb2.ModelVersionInfo(
        model=genre_pb2.ModelRef(name=served.name, version=str(served.version)),
        kind=KIND_ENUM[served.kind],
        labels=list(served.labels),
        metrics=[
            genre_pb2.Metric(name=str(key), value=float(value))
            for key, value in sorted(metrics.items())
            if isinstance(value, int | float) and not isinstance(value, bool)
        ],
        split_protocol=manifest.split_protocol,
        is_default=is_default,
        created=manifest.created,
        weights_sha256=manifest.weights_sha256,
        min_probability=resolve_min_probability(
            None, server_min_probability, manifest.min_probability
        ),
    )
    signature = served.signature
    if isinstance(signature, FeaturesSignature):
        imputable = signature.preprocessor.imputable
        info.features.extend(
            genre_pb2.FeatureSpec(name=name, imputable=name in imputable)
            for name in signature.feature_names
        )
        info.text_features.extend(
            genre_pb2.TextFeatureSpec(name=text.name, max_length=text.max_length)
            for text in signature.preprocessor.text_features
        )
    if isinstance(signature, AudioSignature):
        info.detects_music = signature.detects_music
        frontend = signature.frontend_config
        info.audio.CopyFrom(
            genre_pb2.AudioFrontEnd(
                sample_rate=frontend.sample_rate,
                n_fft=frontend.n_fft,
                hop_length=frontend.hop_length,
                n_mels=frontend.n_mels,
                window_seconds=frontend.window_seconds,
                default_hop_seconds=frontend.default_hop_seconds,
            )
        )
    return info
