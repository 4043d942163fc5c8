"""Training is deterministic, and a published checkpoint scores exactly like the trainer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modelcore.checkpoint import load_checkpoint
from modelcore.models import build_model
from modelcore.preprocessing import FeaturePreprocessor
from tests.support.predictions import predict_probabilities
from tests.training.synthetic import gtzan_rows, write_gtzan
from training.features.config import ModelConfig, RunConfig, TrainConfig
from training.features.pipeline import run_features
from training.features.train import train_classifier
from training.fitting import fit_temperature

TINY_MODEL = ModelConfig(hidden_sizes=(16,), dropout=0.1)
TINY_TRAIN = TrainConfig(epochs=4, batch_size=16, patience=4, device="cpu", seed=7)


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=90)
    features = (rng.normal(size=(90, 5)) + labels[:, None]).astype(np.float32)
    return features, labels.astype(np.int64)


def test_same_seed_same_weights() -> None:
    x, y = _data()
    runs = [
        train_classifier(x[:60], y[:60], 3, TINY_MODEL, TINY_TRAIN, x[60:], y[60:], progress=False)
        for _ in range(2)
    ]
    first, second = (run.model.state_dict() for run in runs)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert [r.valid_loss for r in runs[0].history] == [r.valid_loss for r in runs[1].history]


def test_fixed_epochs_runs_exactly_that_many() -> None:
    x, y = _data()
    result = train_classifier(x, y, 3, TINY_MODEL, TINY_TRAIN, fixed_epochs=2, progress=False)
    assert result.epochs_run == 2
    assert result.best_epoch == 2
    with pytest.raises(ValueError, match="either validation rows or fixed_epochs"):
        train_classifier(x, y, 3, TINY_MODEL, TINY_TRAIN, progress=False)


def test_temperature_undoes_scaled_logits() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=2000)
    logits = torch.from_numpy(rng.normal(size=(2000, 4)).astype(np.float32))
    logits[torch.arange(2000), torch.from_numpy(labels)] += 1.0
    temperature = fit_temperature(logits * 3.0, labels.astype(np.int64))
    assert temperature == pytest.approx(3.0, rel=0.1)


def tiny_gtzan(directory: Path) -> Path:
    """Ten genres x six tracks; split lists put tracks 0-3 in train and 4-5 in valid."""
    path = write_gtzan(directory / "features_30_sec.csv", gtzan_rows(tracks_per_genre=6))
    splits = directory / "splits"
    splits.mkdir()
    genres = sorted({str(row[-1]) for row in gtzan_rows(tracks_per_genre=1)})
    for part, numbers in (("train", range(4)), ("valid", range(4, 6))):
        lines = [f"{g}/{g}.{n:05d}.wav" for g in genres for n in numbers]
        (splits / f"{part}_filtered.txt").write_text("\n".join(lines) + "\n")
    return path


def test_manifest_round_trip_matches_the_trainer(tmp_path: Path) -> None:
    tiny_gtzan(tmp_path)
    config = RunConfig(
        dataset="gtzan30",
        data=tmp_path,
        out=tmp_path / "models",
        name="tiny-gtzan",
        model=TINY_MODEL,
        train=TINY_TRAIN,
        refit=False,
        importance_repeats=1,
    )
    outcome = run_features(config, progress=False)
    loaded = load_checkpoint(outcome.directory)
    manifest = loaded.manifest
    model = build_model(manifest.architecture)
    model.load_state_dict(loaded.state_dict)
    model.eval()
    pre = FeaturePreprocessor.from_dict(manifest.preprocessing)
    rows = np.random.default_rng(1).random((7, len(pre.feature_names))).astype(np.float32)
    temperature = manifest.temperature
    with torch.no_grad():
        served = torch.softmax(model(torch.from_numpy(pre.transform(rows))) / temperature, dim=1)
    trained = predict_probabilities(model, pre, rows, temperature)
    assert np.allclose(served.numpy(), trained, atol=1e-6)
    assert manifest.labels[0] == "blues"
    assert manifest.input_schema["features"] == list(pre.feature_names)
    assert "valid" in manifest.metrics["split_protocol"]
    assert 0.0 <= manifest.metrics["listswap_accuracy"] <= 1.0  # no test part: a swap estimate
    assert "list swap" in manifest.metrics["split_protocol"]
    assert manifest.training["data_fingerprint"]
    assert {"report.json", "report.md", "confusion_matrix.png"} <= {
        p.name for p in outcome.directory.iterdir()
    }
