"""Runners (``server.runner``): one per kind in the one table, probabilities that sum to one in
label order, and a checkpoint whose parts disagree refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modelcore.checkpoint import CheckpointError, load_checkpoint
from modelcore.manifest import KIND_PARTS
from server.runner import RUNNERS, AudioRunner, FeaturesRunner, build_runner, split_outputs
from tests.support.checkpoints import LABELS, write_tiny_audio_model, write_tiny_model

CPU = torch.device("cpu")


def test_every_kind_has_a_runner() -> None:
    assert set(RUNNERS) == set(KIND_PARTS)


def test_a_features_runner_answers_calibrated_probabilities(tmp_path: Path) -> None:
    runner = build_runner(load_checkpoint(write_tiny_model(tmp_path)), CPU)
    assert isinstance(runner, FeaturesRunner)
    assert runner.labels == LABELS
    rows = np.random.default_rng(0).normal(size=(5, len(runner.feature_names)))
    probabilities = runner.run(rows.astype(np.float32) * 10 + 100)
    assert probabilities.shape == (5, len(LABELS))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_an_audio_runner_scores_windows(tmp_path: Path) -> None:
    runner = build_runner(load_checkpoint(write_tiny_audio_model(tmp_path)), CPU)
    assert isinstance(runner, AudioRunner)
    windows = np.zeros((3, runner.frontend_config.window_samples), dtype=np.float32)
    probabilities, music = split_outputs(runner.run(windows))
    assert probabilities.shape == (3, len(runner.labels))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert np.isnan(music).all()
    assert not runner.detects_music


def test_labels_that_do_not_fit_the_outputs_are_refused(tmp_path: Path) -> None:
    directory = write_tiny_model(tmp_path)
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["labels"] = [*manifest["labels"], "extra"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="outputs but 4 labels"):
        build_runner(load_checkpoint(directory), CPU)
