"""The manifest type: every bundled manifest reads and writes back unchanged, a bad field is
named, and what a kind needs is checked in one place."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modelcore.checkpoint import read_manifest, write_manifest
from modelcore.manifest import KIND_PARTS, Manifest, ManifestError, Weights
from tests.conftest import REPOSITORY_ROOT

BUNDLED = sorted((REPOSITORY_ROOT / "models").glob("*/*/manifest.json"))
SHA = "ab" * 32


def draft(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format_version": 1,
        "name": "tiny",
        "kind": "features",
        "architecture": {"type": "mlp", "params": {}},
        "labels": ["a", "b"],
        "preprocessing": {"feature_names": ["x"]},
        "input_schema": {"features": ["x"]},
        "calibration": {"temperature": 1.5},
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_bundled_manifests_round_trip_unchanged(path: Path, tmp_path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    manifest = Manifest.from_dict(data)
    assert manifest.to_dict() == data
    assert manifest.kind in KIND_PARTS
    assert manifest.weights_sha256 == data["weights"]["sha256"]
    copy = tmp_path / path.parent.parent.name / path.parent.name
    copy.mkdir(parents=True)
    write_manifest(copy, manifest)
    assert (copy / "manifest.json").read_text(encoding="utf-8") == path.read_text(encoding="utf-8")
    assert read_manifest(copy) == manifest


def test_typed_parts_and_defaults() -> None:
    manifest = Manifest.from_dict(draft())
    assert manifest.labels == ("a", "b")
    assert manifest.temperature == 1.5
    assert (manifest.version, manifest.weights, manifest.frontend) == (0, None, {})
    assert "frontend" not in manifest.to_dict()
    published = replace(manifest, version=3, weights=Weights("model.safetensors", SHA))
    assert published.to_dict()["weights"] == {"file": "model.safetensors", "sha256": SHA}


def test_unknown_keys_survive_a_round_trip() -> None:
    data = draft(future_field={"x": 1})
    assert Manifest.from_dict(data).to_dict()["future_field"] == {"x": 1}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"kind": "video"}, "kind"),
        ({"name": "Bad Name"}, "name"),
        ({"format_version": 2}, "format_version"),
        ({"labels": ["a", "a"]}, "labels"),
        ({"labels": "ab"}, "labels"),
        ({"architecture": {}}, "architecture"),
        ({"preprocessing": {}}, "preprocessing"),
        ({"kind": "audio"}, "frontend"),
        ({"calibration": {"temperature": 0}}, "calibration.temperature"),
        ({"version": "2"}, "version"),
        ({"version": 2}, "weights"),
        ({"weights": {"file": "model.safetensors", "sha256": "xyz"}}, "weights"),
        ({"metrics": []}, "metrics"),
    ],
)
def test_a_bad_field_is_named(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError, match=f"^{field}"):
        Manifest.from_dict(draft(**overrides))


def test_missing_required_keys_are_listed() -> None:
    with pytest.raises(ManifestError, match="lacks kind, labels"):
        Manifest.from_dict({"format_version": 1, "name": "x", "architecture": {"type": "mlp"}})
