"""What a served version asks of its callers and answers with, without its weights.

Everything on the per-call path that validates input or builds a response needs a version's
labels, its feature columns and preprocessing, or its audio front-end, but never its tensors. A
front-end process (``server.inference``) holds these signatures only, built from the manifest the
inference process sends it; a single process builds them from its own runners. Either way the
servicers see one type per kind of model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelcore.frontend import FrontEndConfig
from modelcore.manifest import Manifest
from modelcore.preprocessing import FeaturePreprocessor


@dataclass(frozen=True)
class FeaturesSignature:
    """A feature model: raw rows in its column order (NaN where a caller may omit one)."""

    labels: tuple[str, ...]
    preprocessor: FeaturePreprocessor

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.preprocessor.feature_names


@dataclass(frozen=True)
class AudioSignature:
    """An audio model: mono windows at ``frontend_config``'s rate. ``windows_per_second`` is
    what the version measured it can score where it runs (stream admission's capacity);
    ``detects_music``: whether its outputs carry a music probability."""

    labels: tuple[str, ...]
    frontend_config: FrontEndConfig
    windows_per_second: float
    detects_music: bool


Signature = FeaturesSignature | AudioSignature


def signature_of(manifest: Manifest, facts: dict[str, Any]) -> Signature:
    """A signature from a verified manifest plus what loading the version measured (``facts``:
    ``windows_per_second`` and ``detects_music`` for audio models)."""
    if manifest.kind == "features":
        preprocessor = FeaturePreprocessor.from_dict(manifest.preprocessing or {})
        return FeaturesSignature(labels=manifest.labels, preprocessor=preprocessor)
    return AudioSignature(
        labels=manifest.labels,
        frontend_config=FrontEndConfig.from_dict(manifest.frontend or {}),
        windows_per_second=float(facts.get("windows_per_second", 0.0)),
        detects_music=bool(facts.get("detects_music", False)),
    )
