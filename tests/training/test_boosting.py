"""Boosted trees served as tensors score exactly as scikit-learn does, and the MLP+trees blend
survives the checkpoint round trip into the server's runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modelcore.checkpoint import load_checkpoint
from modelcore.models import build_model
from modelcore.models.trees import MLPTreeBlend, TreeEnsemble
from modelcore.preprocessing import FeaturePreprocessor
from server.compute.fused import FusedMLPEnsemble
from server.runner import FeaturesRunner
from tests.support.predictions import predict_probabilities
from tests.training.synthetic import SPOTIFY11_HEADER, spotify11_rows, write_csv
from tests.training.test_train import TINY_MODEL, TINY_TRAIN
from training.features.boosting import best_rounds, fit_booster, tree_ensemble
from training.features.config import RunConfig, TreeConfig
from training.features.pipeline import run_features

SMALL = TreeConfig(max_rounds=12, min_samples_leaf=5, max_leaf_nodes=8)


def _rows(classes: int, count: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 6)).astype(np.float32)
    y = (np.floor(np.abs(x[:, :3]).sum(axis=1) * 2) % classes).astype(np.int64)
    return x, y


@pytest.mark.parametrize("classes", [2, 4])
def test_tensor_trees_equal_scikit_learn(classes: int) -> None:
    x, y = _rows(classes)
    booster = fit_booster(x, y, SMALL)
    held_out, _ = _rows(classes, 300, seed=1)
    trees = tree_ensemble(booster, 6, classes)
    with torch.inference_mode():
        ours = torch.softmax(trees(torch.from_numpy(held_out)), dim=1).numpy()
    np.testing.assert_allclose(ours, booster.predict_proba(held_out), atol=1e-6)
    rebuilt = build_model({"type": "trees", "params": trees.params})
    rebuilt.load_state_dict(trees.state_dict())
    with torch.inference_mode():
        assert torch.equal(rebuilt(torch.from_numpy(held_out)), trees(torch.from_numpy(held_out)))
    first_five = tree_ensemble(booster, 6, classes, rounds=5)
    staged = list(booster.staged_predict_proba(held_out))[4]
    with torch.inference_mode():
        ours = torch.softmax(first_five(torch.from_numpy(held_out)), dim=1).numpy()
    np.testing.assert_allclose(ours, staged, atol=1e-6)


def test_a_class_the_trees_never_saw_gets_no_probability() -> None:
    x, y = _rows(3)
    booster = fit_booster(x, y, SMALL)
    trees = tree_ensemble(booster, 6, num_classes=5)  # classes 3 and 4 absent from training
    with torch.inference_mode():
        probabilities = torch.softmax(trees(torch.from_numpy(x[:50])), dim=1).numpy()
    assert probabilities[:, 3:].max() < 1e-9
    np.testing.assert_allclose(probabilities[:, :3], booster.predict_proba(x[:50]), atol=1e-6)


def test_best_rounds_is_where_validation_log_loss_bottoms() -> None:
    x, y = _rows(3, 1200)
    booster = fit_booster(x[:900], y[:900], TreeConfig(max_rounds=60, learning_rate=0.3))
    rounds = best_rounds(booster, x[900:], y[900:])
    losses = [
        -np.log(p[np.arange(300), y[900:]]).mean() for p in booster.staged_predict_proba(x[900:])
    ]
    assert rounds == int(np.argmin(losses)) + 1
    assert 1 <= rounds < 60


def test_blend_is_the_weighted_mixture_of_its_calibrated_parts() -> None:
    x, y = _rows(3)
    trees = tree_ensemble(fit_booster(x, y, SMALL), 6, 3)
    mlp = {"input_dim": 6, "num_classes": 3, "hidden_sizes": [8], "members": 2}
    blend = MLPTreeBlend(mlp, trees.params, 1.5, 0.8, tree_weight=0.3).eval()
    blend.trees.load_state_dict(trees.state_dict())
    inputs = torch.from_numpy(x[:20])
    with torch.inference_mode():
        expected = 0.7 * torch.softmax(blend.mlp(inputs) / 1.5, dim=1) + 0.3 * torch.softmax(
            trees(inputs) / 0.8, dim=1
        )
        assert torch.allclose(blend(inputs).exp(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="tree_weight"):
        MLPTreeBlend(mlp, trees.params, 1.0, 1.0, tree_weight=1.0)


def test_a_blended_run_publishes_what_the_server_serves(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "train.csv", SPOTIFY11_HEADER, spotify11_rows(artists=44))
    config = RunConfig(
        "spotify11",
        csv,
        tmp_path / "models",
        "blend",
        TINY_MODEL,
        TINY_TRAIN,
        trees=SMALL,
        importance_repeats=1,
    )
    outcome = run_features(config, progress=False)
    checkpoint = load_checkpoint(outcome.directory)
    manifest = checkpoint.manifest
    assert manifest.architecture["type"] == "mlp_tree_blend"
    assert manifest.training["hyperparameters"]["trees"]["max_rounds"] == 12
    assert "gradient-boosted trees" in manifest.metrics["split_protocol"]
    params = manifest.architecture["params"]
    assert 1 <= params["trees"]["trees"] <= 12 * 11
    model = build_model(manifest.architecture)
    model.load_state_dict(checkpoint.state_dict)
    preprocessor = FeaturePreprocessor.from_dict(manifest.preprocessing)
    width = len(preprocessor.feature_names)
    rows = np.random.default_rng(2).random((9, width), dtype=np.float32)
    rows[0, preprocessor.feature_names.index("key")] = np.nan  # imputed, as the server does
    temperature = manifest.temperature
    expected = predict_probabilities(model.eval(), preprocessor, rows, temperature)
    runner = FeaturesRunner(checkpoint, torch.device("cpu"), precision="bfloat16")
    assert runner.precision == "float32"  # only plain MLPs run in bfloat16
    assert isinstance(runner.model.mlp, FusedMLPEnsemble)  # its MLP part runs fused
    served = runner.run(rows).astype(np.float64)
    assert np.abs(served - expected).max() < 1e-6


def test_rows_on_a_threshold_take_scikit_learns_branch_in_both_walks() -> None:
    x, y = _rows(3)
    booster = fit_booster(x, y, SMALL)
    trees = tree_ensemble(booster, 6, 3)
    chosen = trees.threshold[:, 0].numpy()  # roots: every row meets them
    columns = trees.feature[:, 0].numpy()
    on_edge = np.repeat(x[:1], 3 * len(chosen), axis=0)
    for index, (threshold, column) in enumerate(zip(chosen, columns, strict=True)):
        nearest = np.float32(threshold)  # float32 values at and either side of the threshold
        around = (np.nextafter(nearest, np.float32(-1e9)), nearest, np.nextafter(nearest, 1e9))
        on_edge[3 * index : 3 * index + 3, column] = around
    expected = booster.predict_proba(on_edge)
    inputs = torch.from_numpy(on_edge)
    with torch.inference_mode():
        numpy_walk = torch.softmax(trees(inputs), dim=1).numpy()
        torch_walk = torch.softmax(trees._walk_torch(inputs), dim=1).numpy()  # the GPU's walk
    np.testing.assert_allclose(numpy_walk, expected, atol=1e-6)
    np.testing.assert_allclose(torch_walk, expected, atol=1e-6)


def test_a_float64_threshold_between_float32_values_is_compared_exactly() -> None:
    stump = TreeEnsemble(input_dim=1, num_classes=2, trees=1, nodes=3, depth=1)
    stump.load_state_dict(
        {
            "feature": torch.zeros(1, 3, dtype=torch.int64),
            "threshold": torch.tensor([[0.1, 0.0, 0.0]], dtype=torch.float64),
            "left": torch.tensor([[1, 1, 2]]),
            "right": torch.tensor([[2, 1, 2]]),
            "value": torch.tensor([[0.0, -1.0, 1.0]], dtype=torch.float64),
            "tree_class": torch.tensor([1]),
            "baseline": torch.zeros(2, dtype=torch.float64),
        }
    )
    above = np.float32(0.1)  # 0.100000001..., just over the float64 0.1
    below = np.nextafter(above, np.float32(0))
    assert float(above) > 0.1 > float(below)
    inputs = torch.tensor([[below], [above]], dtype=torch.float32)
    for walk in (stump.forward, stump._walk_torch):
        assert walk(inputs)[:, 1].tolist() == [-1.0, 1.0]
