"""An MLP ensemble averages its members' probabilities and travels through a checkpoint like an
MLP, so the server (``softmax(model(x) / T)`` from ``build_model``) serves it unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modelcore.checkpoint import load_checkpoint, write_checkpoint
from modelcore.models import build_model
from modelcore.models.ensemble import MLPEnsemble
from training.features.config import ModelConfig, TrainConfig
from training.features.train import train_model

ARCHITECTURE = {
    "type": "mlp_ensemble",
    "params": {"input_dim": 5, "num_classes": 3, "hidden_sizes": [8], "members": 4},
}


def _ensemble() -> MLPEnsemble:
    torch.manual_seed(0)
    model = build_model(ARCHITECTURE)
    assert isinstance(model, MLPEnsemble)
    return model.eval()


def test_forward_is_the_log_of_the_members_mean_probability() -> None:
    model = _ensemble()
    rows = torch.randn(6, 5)
    with torch.no_grad():
        members = torch.stack([torch.softmax(member(rows), dim=1) for member in model.members])
        output = model(rows)
    assert len(model.members) == 4
    assert torch.allclose(output.exp(), members.mean(dim=0), atol=1e-6)
    assert torch.allclose(torch.softmax(output, dim=1), members.mean(dim=0), atol=1e-6)


def test_batched_forward_equals_per_row_forward() -> None:
    model = _ensemble()
    rows = torch.randn(5, 5)
    with torch.no_grad():
        batched = model(rows)
        single = torch.cat([model(rows[index : index + 1]) for index in range(5)])
    assert torch.allclose(batched, single, atol=1e-6)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = _ensemble()
    manifest = {
        "name": "tiny-ensemble",
        "kind": "features",
        "architecture": ARCHITECTURE,
        "preprocessing": {"feature_names": ["x"]},
        "input_schema": {"features": ["x"]},
    }
    directory = write_checkpoint(
        tmp_path, {**manifest, "labels": ["a", "b", "c"]}, model.state_dict()
    )
    loaded = load_checkpoint(directory)
    rebuilt = build_model(loaded.manifest.architecture)
    rebuilt.load_state_dict(loaded.state_dict)  # strict: every member's weights present
    rebuilt.eval()
    rows = torch.randn(7, 5)
    with torch.no_grad():
        assert torch.equal(rebuilt(rows), model(rows))


def test_bad_member_count() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        MLPEnsemble(5, 3, members=0)
    with pytest.raises(ValueError, match="members"):
        ModelConfig(members=0)


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=90)
    features = (rng.normal(size=(90, 5)) + labels[:, None]).astype(np.float32)
    return features, labels.astype(np.int64)


@pytest.mark.parametrize("bootstrap", [False, True])
def test_train_model_builds_a_deterministic_ensemble(bootstrap: bool) -> None:
    x, y = _data()
    model_config = ModelConfig(hidden_sizes=(16,), dropout=0.1, members=3)
    config = TrainConfig(
        epochs=4, batch_size=16, patience=4, device="cpu", seed=3, bootstrap=bootstrap
    )
    runs = [
        train_model(x[:60], y[:60], 3, model_config, config, x[60:], y[60:], progress=False)
        for _ in range(2)
    ]
    assert isinstance(runs[0].model, MLPEnsemble)
    assert runs[0].architecture["type"] == "mlp_ensemble"
    assert len(runs[0].member_epochs) == 3
    first, second = (run.model.state_dict() for run in runs)
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not torch.equal(first["members.0.head.weight"], first["members.1.head.weight"])
    refit = train_model(x, y, 3, model_config, config, fixed_epochs=(1, 2, 3), progress=False)
    assert refit.member_epochs == (1, 2, 3)
    with pytest.raises(ValueError, match="one count per member"):
        train_model(x, y, 3, model_config, config, fixed_epochs=(1,), progress=False)


def test_one_member_is_a_plain_mlp() -> None:
    x, y = _data()
    config = TrainConfig(epochs=2, batch_size=16, patience=2, device="cpu")
    result = train_model(x, y, 3, ModelConfig((8,)), config, fixed_epochs=(2,), progress=False)
    assert result.architecture["type"] == "mlp"
    assert not isinstance(result.model, MLPEnsemble)
