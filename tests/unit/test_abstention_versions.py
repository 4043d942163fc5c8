"""Every bundled version that ``genre-train abstention`` made keeps its base's genre model bit
for bit: only the music detector (and the default ``min_probability``) may differ, so the genre
figures the README gives for the base are the new version's too."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modelcore.checkpoint import load_checkpoint, read_manifest
from tests.conftest import REPOSITORY_ROOT

MODELS = REPOSITORY_ROOT / "models"
MADE_BY_ABSTENTION = sorted(
    path
    for path in MODELS.glob("*/*")
    if (path / "manifest.json").is_file() and "abstention" in read_manifest(path).training
)


def test_the_abstention_versions_include_the_codec_trained_one() -> None:
    names = {f"{path.parent.name}/{path.name}" for path in MADE_BY_ABSTENTION}
    assert {"gtzan-cnn-lstm/4", "gtzan-cnn-lstm/5"} <= names


@pytest.mark.parametrize("version", MADE_BY_ABSTENTION, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_genre_tensors_are_the_base_s_bit_for_bit(version: Path) -> None:
    made = load_checkpoint(version)
    recorded = made.manifest.training["abstention"]
    base = load_checkpoint(REPOSITORY_ROOT / recorded["base"])
    assert base.manifest.weights_sha256 == recorded["base_weights_sha256"]
    genre = {key for key in base.state_dict if not key.startswith("detector.")}
    assert genre == {key for key in made.state_dict if not key.startswith("detector.")}
    for key in sorted(genre):
        assert torch.equal(made.state_dict[key], base.state_dict[key]), key
    assert made.manifest.temperature == base.manifest.temperature
    assert made.manifest.labels == base.manifest.labels
