"""bfloat16 feature inference: opt-in, checked against float32 when a version loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modelcore.checkpoint import load_checkpoint
from server.config import ServerConfig
from server.runner import BFLOAT16_TOLERANCE, FeaturesRunner
from tests.support.checkpoints import write_tiny_model


@pytest.fixture
def checkpoint_dir(tmp_path: Path) -> Path:
    return write_tiny_model(tmp_path / "models", hidden=(64, 32))


def random_rows(runner: FeaturesRunner, count: int) -> np.ndarray:
    mean = np.asarray(runner.preprocessor.mean, dtype=np.float32)
    std = np.asarray(runner.preprocessor.std, dtype=np.float32)
    noise = np.random.default_rng(1).standard_normal((count, mean.size)).astype(np.float32)
    return mean + noise * std


def test_bfloat16_runs_close_to_float32(checkpoint_dir: Path) -> None:
    checkpoint = load_checkpoint(checkpoint_dir)
    exact = FeaturesRunner(checkpoint, torch.device("cpu"))
    rough = FeaturesRunner(checkpoint, torch.device("cpu"), precision="bfloat16")
    assert (exact.precision, rough.precision) == ("float32", "bfloat16")
    assert 0 < rough.precision_error <= BFLOAT16_TOLERANCE
    for count in (1, 9, 300):  # both sides of the fused/unfused switch of float32
        rows = random_rows(exact, count)
        expected, got = exact.run(rows), rough.run(rows)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
        assert np.abs(got - expected).max() <= BFLOAT16_TOLERANCE
        assert not np.array_equal(got, expected)  # it really computed in bfloat16


def test_a_version_that_strays_too_far_serves_in_float32(checkpoint_dir: Path) -> None:
    checkpoint = load_checkpoint(checkpoint_dir)
    exact = FeaturesRunner(checkpoint, torch.device("cpu"))
    refused = FeaturesRunner(checkpoint, torch.device("cpu"), precision="bfloat16", tolerance=0.0)
    assert refused.precision == "float32"
    assert refused.precision_error > 0  # measured, and the load log reports it
    rows = random_rows(exact, 5)
    np.testing.assert_array_equal(refused.run(rows), exact.run(rows))


def test_unknown_precisions_are_configuration_errors(checkpoint_dir: Path) -> None:
    with pytest.raises(ValueError, match="features_precision"):
        ServerConfig.from_sources([], {"GENRE_FEATURES_PRECISION": "int4"})
    with pytest.raises(ValueError, match="precision"):
        FeaturesRunner(load_checkpoint(checkpoint_dir), torch.device("cpu"), precision="fp8")
