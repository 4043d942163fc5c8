"""Writes tiny, deterministic features checkpoints in the real repository format.

The models are untrained (seeded random weights): the serving tests check plumbing, numbers and
statuses, not accuracy. They go through ``write_checkpoint``, so they are real safetensors files
with real checksums that the server verifies like any other.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.audio_model import write_stand_in
from genre.v1 import genre_pb2
from modelcore.checkpoint import split_members, write_checkpoint
from modelcore.frontend import FrontEndConfig, MusicnnFrontEndConfig
from modelcore.models import build_model
from modelcore.models.audio_ensemble import AudioEnsemble
from modelcore.models.title import ngram_keys
from modelcore.models.title_blend import TitleBlend
from modelcore.preprocessing import FeaturePreprocessor, Imputer, TextFeature, UnitRepair

FEATURE_NAMES = ("tempo", "energy", "loudness", "duration_ms", "key")
LABELS = ("rock", "jazz", "classical")
IMPUTABLE = ("key",)


def tiny_preprocessor() -> FeaturePreprocessor:
    return FeaturePreprocessor(
        feature_names=FEATURE_NAMES,
        mean=(120.0, 0.5, -8.0, 200000.0, 5.0),
        std=(30.0, 0.2, 4.0, 60000.0, 3.0),
        unit_repairs=(UnitRepair("duration_ms", below=100.0, multiply=60000.0),),
        imputers=(
            Imputer("key", 2.0, (("energy", 6.0),), clip=(0.0, 11.0), round_to_integer=True),
        ),
    )


def _tiny_mlp(hidden: tuple[int, ...]) -> tuple[dict[str, Any], torch.nn.Module]:
    architecture = {
        "type": "mlp",
        "params": {
            "input_dim": len(FEATURE_NAMES),
            "num_classes": len(LABELS),
            "hidden_sizes": list(hidden),
            "dropout": 0.0,
            "batch_norm": True,
            "activation": "gelu",
        },
    }
    model = build_model(architecture)
    with torch.no_grad():  # non-trivial running statistics so BatchNorm is exercised
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                assert module.running_mean is not None
                assert module.running_var is not None
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
    return architecture, model


def write_tiny_model(
    repository: Path,
    name: str = "tiny-mlp",
    version: int | None = None,
    seed: int = 0,
    hidden: tuple[int, ...] = (16,),
) -> Path:
    torch.manual_seed(seed)
    architecture, model = _tiny_mlp(hidden)
    manifest = _tiny_manifest(name, architecture, tiny_preprocessor(), seed)
    return write_checkpoint(repository, manifest, model.state_dict(), version=version)


def _tiny_manifest(
    name: str,
    architecture: dict[str, Any],
    preprocessor: FeaturePreprocessor,
    seed: int,
    metrics: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The draft manifest of a tiny features model (its text features, if any, listed)."""
    schema: dict[str, Any] = {"features": list(FEATURE_NAMES), "imputable": list(IMPUTABLE)}
    if preprocessor.text_features:
        schema["text"] = [
            {"name": text.name, "max_length": text.max_length}
            for text in preprocessor.text_features
        ]
    return {
        "name": name,
        "kind": "features",
        "architecture": architecture,
        "labels": list(LABELS),
        "preprocessing": preprocessor.to_dict(),
        "input_schema": schema,
        "calibration": {"temperature": 1.5},
        "metrics": {"split_protocol": "untrained test model", **(metrics or {"accuracy": 0.0})},
        "training": {"dataset": "none", "seed": seed},
    }


TITLE_LENGTH = 24  # the tiny titled model's longest title, short enough to exceed in a test
TITLES = ("Rock Anthem", "Midnight Jazz Night", "Nocturne in E flat", "Rock and Roll")


def write_tiny_titled_model(repository: Path, name: str = "tiny-titled", seed: int = 0) -> Path:
    """The tiny MLP with a title member (``TitleBlend``): a vocabulary of the n-grams of
    ``TITLES`` with seeded random class scores, so titles move the answers."""
    torch.manual_seed(seed)
    numeric, mlp = _tiny_mlp((16,))
    sizes = (1, 2, 3)
    codes = torch.from_numpy(
        np.stack([TextFeature("title", TITLE_LENGTH).encode(t) for t in TITLES])
    )
    keys = ngram_keys(codes, sizes).numpy()
    vocabulary = np.unique(keys[keys >= 0])
    title = {
        "max_length": TITLE_LENGTH,
        "ngram_sizes": list(sizes),
        "vocabulary_size": len(vocabulary),
        "num_classes": len(LABELS),
    }
    architecture = {
        "type": "title_blend",
        "params": {
            "numeric": numeric,
            "title": title,
            "numeric_features": len(FEATURE_NAMES),
            "numeric_weight": 0.9,
            "title_weight": 0.7,
        },
    }
    model = build_model(architecture)
    assert isinstance(model, TitleBlend)
    model.numeric.load_state_dict(mlp.state_dict())
    with torch.no_grad():
        model.title.vocabulary.copy_(torch.from_numpy(vocabulary))
        model.title.idf.uniform_(1.0, 3.0)
        model.title.scores.weight.normal_(0.0, 2.0)
        model.title.bias.normal_(0.0, 0.5)
        model.class_bias.normal_(0.0, 0.3)
    preprocessor = replace(tiny_preprocessor(), text_features=(TextFeature("title", TITLE_LENGTH),))
    metrics = {"accuracy": 0.5, "accuracy_no_title": 0.25}
    manifest = _tiny_manifest(name, architecture, preprocessor, seed, metrics)
    return write_checkpoint(repository, manifest, model.state_dict())


def example_row(**overrides: float) -> dict[str, float]:
    row = {"tempo": 128.0, "energy": 0.8, "loudness": -5.0, "duration_ms": 210000.0, "key": 7.0}
    row.update(overrides)
    return row


TINY_FRONTEND = FrontEndConfig(
    sample_rate=8000,
    n_fft=256,
    hop_length=128,
    n_mels=32,
    f_min=20.0,
    f_max=4000.0,
    window_seconds=0.5,
    default_hop_seconds=0.25,
    mean=-6.0,
    std=4.0,
)
AUDIO_LABELS = ("classical", "disco", "metal")


def tiny_stream_config(hop_seconds: float = 0.0) -> genre_pb2.ClassifyAudioStreamRequest:
    """The first message of a stream to ``tiny-audio``: its rate, mono 16-bit PCM."""
    return genre_pb2.ClassifyAudioStreamRequest(
        config=genre_pb2.StreamConfig(
            model=genre_pb2.ModelRef(name="tiny-audio"),
            sample_rate=TINY_FRONTEND.sample_rate,
            encoding=genre_pb2.PCM_S16LE,
            channels=1,
            hop_seconds=hop_seconds,
        )
    )


def write_tiny_audio_model(repository: Path, name: str = "tiny-audio", seed: int = 0) -> Path:
    """An untrained CNN-LSTM with a small, fast front-end (8 kHz, 0.5 s windows, 0.25 s hop)."""
    return write_stand_in(
        repository,
        TINY_FRONTEND,
        name=name,
        labels=AUDIO_LABELS,
        sizes={"conv_channels": [4, 8], "lstm_hidden": 8, "head_hidden": 16, "dropout": 0.0},
        seed=seed,
        protocol="untrained test model",
    )


# A tiny stand-in for the tagger's front-end: 8 kHz, 0.5-s windows give 32 frames of 32 mels.
TINY_TAGGER_FRONTEND = MusicnnFrontEndConfig(
    sample_rate=8000, n_fft=256, hop_length=128, n_mels=32, frames=31
)
TINY_TAGGER = {"n_mels": 32, "num_tags": 6, "frontend_filters": 0.1, "midend_filters": 8,
               "backend_units": 12}  # fmt: skip


def write_tiny_ensemble(repository: Path, name: str = "tiny-ensemble", seed: int = 0) -> Path:
    """An untrained audio ensemble in the shipped layout: the CNN-LSTM's and the tagger's
    tensors in member files of their own, the head and fusion in ``model.safetensors``."""
    torch.manual_seed(seed)
    architecture = {
        "type": "audio_ensemble",
        "params": {
            "num_classes": len(AUDIO_LABELS),
            "cnn_lstm": {"n_mels": 32, "num_classes": len(AUDIO_LABELS), "conv_channels": [4, 8],
                         "lstm_hidden": 8, "head_hidden": 16, "dropout": 0.0},
            "tagger": TINY_TAGGER,
            "head_inputs": TINY_TAGGER["backend_units"] + TINY_TAGGER["num_tags"],
        },
        "inputs": [TINY_FRONTEND.to_dict(), TINY_TAGGER_FRONTEND.to_dict()],
    }  # fmt: skip
    model = build_model(architecture)
    assert isinstance(model, AudioEnsemble)
    with torch.no_grad():  # both members have a say, and the bias a visible effect
        model.member_weights.copy_(torch.tensor([0.5, 0.5]))
        model.class_bias.copy_(torch.tensor([0.0, 0.3, -0.3]))
    own, members = split_members(model.state_dict(), {"cnn_lstm": "cnn_lstm.", "tagger": "tagger."})
    manifest = {
        "name": name,
        "kind": "audio",
        "architecture": architecture,
        "labels": list(AUDIO_LABELS),
        "frontend": TINY_FRONTEND.to_dict(),
        "calibration": {"temperature": 1.2},
        "members": {
            "cnn_lstm": {"prefix": "cnn_lstm.", "role": "untrained"},
            "tagger": {"prefix": "tagger.", "role": "untrained"},
        },
        "metrics": {"split_protocol": "untrained test model", "track_accuracy": 0.0},
        "training": {"dataset": "none", "seed": seed},
    }
    return write_checkpoint(repository, manifest, own, member_tensors=members)
