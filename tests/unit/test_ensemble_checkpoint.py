"""An ensemble version is served only whole: each member's tensors file is checked against its
own sha256, and the runner gives a batch of windows the answers it gives each window alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modelcore.checkpoint import CheckpointError, load_checkpoint
from modelcore.manifest import Manifest, ManifestError
from server.runner import AudioRunner
from tests.support.checkpoints import (
    TINY_FRONTEND,
    write_tiny_audio_model,
    write_tiny_ensemble,
)
from tests.support.harness import cpu_registry


@pytest.fixture
def ensemble(tmp_path: Path) -> Path:
    return write_tiny_ensemble(tmp_path / "models")


def test_members_are_written_to_their_own_files_and_loaded_under_their_prefix(
    ensemble: Path,
) -> None:
    manifest = json.loads((ensemble / "manifest.json").read_text())
    files = {m: e["weights"]["file"] for m, e in manifest["members"].items()}
    assert files == {"cnn_lstm": "cnn_lstm.safetensors", "tagger": "tagger.safetensors"}
    checkpoint = load_checkpoint(ensemble)
    prefixes = {key.split(".")[0] for key in checkpoint.state_dict}
    assert prefixes == {"cnn_lstm", "tagger", "head", "member_weights", "class_bias"}


@pytest.mark.parametrize("damage", ["tamper", "remove"])
def test_a_member_that_does_not_verify_refuses_the_version(ensemble: Path, damage: str) -> None:
    member = ensemble / "tagger.safetensors"
    if damage == "tamper":
        data = bytearray(member.read_bytes())
        data[-1] ^= 1
        member.write_bytes(bytes(data))
        expected = r"member tagger: .*sha256 .* does not match"
    else:
        member.unlink()
        expected = r"member tagger: .*missing weights"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(ensemble)


def test_a_member_with_weights_needs_a_prefix() -> None:
    base = {
        "format_version": 1,
        "name": "e",
        "kind": "audio",
        "labels": ["a", "b"],
        "architecture": {"type": "audio_ensemble"},
        "frontend": TINY_FRONTEND.to_dict(),
    }
    weights = {"file": "tagger.safetensors", "sha256": "0" * 64}
    with pytest.raises(
        ManifestError, match=r"members\.tagger: weights need file, sha256 and a prefix"
    ):
        Manifest.from_dict({**base, "members": {"tagger": {"weights": weights}}})
    with pytest.raises(ManifestError, match=r"members\.tagger\.weights: needs a file"):
        Manifest.from_dict(
            {**base, "members": {"tagger": {"weights": {"file": "t"}, "prefix": "tagger."}}}
        )
    kept = Manifest.from_dict({**base, "members": {"tagger": {"weights": weights, "prefix": "t."}}})
    assert kept.to_dict()["members"]["tagger"]["weights"] == weights


async def test_the_registry_serves_the_others_and_leaves_a_broken_ensemble_out(
    tmp_path: Path,
) -> None:
    repository = tmp_path / "models"
    broken = write_tiny_ensemble(repository)
    write_tiny_audio_model(repository)
    (broken / "cnn_lstm.safetensors").write_bytes(b"not the tensors")
    registry = cpu_registry(repository)
    try:
        table = await registry.reload()
        assert set(table.versions) == {"tiny-audio"}
    finally:
        await registry.close()


def test_a_batch_of_windows_gets_the_answers_each_window_gets_alone(ensemble: Path) -> None:
    runner = AudioRunner(load_checkpoint(ensemble), torch.device("cpu"))
    assert len(runner.frontends) == 2
    rng = np.random.default_rng(0)
    windows = (0.3 * rng.standard_normal((5, TINY_FRONTEND.window_samples))).astype(np.float32)
    together = runner.run(windows)[:, :-1]  # the last column: the music detector's (none here)
    alone = np.concatenate([runner.run(window[None]) for window in windows])[:, :-1]
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(together.sum(axis=1), 1.0, atol=1e-5)
    # the members disagree on these windows, so the fusion has something to weigh
    assert together.std(axis=0).max() > 1e-4
    # warming up measures what stream admission counts on
    assert runner.windows_per_second == np.inf
    runner.warm_up(8)
    assert 0 < runner.windows_per_second < np.inf


async def test_a_member_damaged_after_loading_is_noticed_at_the_next_reload(
    tmp_path: Path,
) -> None:
    repository = tmp_path / "models"
    served = write_tiny_ensemble(repository)
    registry = cpu_registry(repository)
    try:
        assert set((await registry.reload()).versions) == {"tiny-ensemble"}
        (served / "tagger.safetensors").write_bytes(b"damaged on disk")
        table = await registry.reload()
        assert "tiny-ensemble" not in table.versions
        assert "tiny-ensemble" in table.missing
    finally:
        await registry.close()
