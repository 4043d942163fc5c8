"""Model architectures, built from a manifest's ``architecture`` entry by ``build_model``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from modelcore.models.audio_ensemble import AudioEnsemble
from modelcore.models.cnn_lstm import CNNLSTMClassifier
from modelcore.models.ensemble import MLPEnsemble
from modelcore.models.mlp import MLPClassifier
from modelcore.models.title import TitleNgrams
from modelcore.models.title_blend import TitleBlend
from modelcore.models.trees import MLPTreeBlend, TreeEnsemble

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLPClassifier,
    "cnn_lstm": CNNLSTMClassifier,
    "mlp_ensemble": MLPEnsemble,
    "trees": TreeEnsemble,
    "mlp_tree_blend": MLPTreeBlend,
    "audio_ensemble": AudioEnsemble,
    "title_ngrams": TitleNgrams,
    "title_blend": lambda numeric, **params: TitleBlend(build_model(numeric), **params),
}


def build_model(architecture: Mapping[str, Any]) -> nn.Module:
    """``{"type": "mlp", "params": {...}}`` -> an untrained module of that type."""
    kind = architecture.get("type")
    if kind not in ARCHITECTURES:
        raise ValueError(f"unknown architecture type {kind!r}; known: {sorted(ARCHITECTURES)}")
    params = dict(architecture.get("params", {}))
    return ARCHITECTURES[str(kind)](**params)
