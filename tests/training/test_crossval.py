"""Grouped cross-validation: folds never split a group, every row is scored once by a model
that never saw its group, results survive a save/merge round trip, and ``--cv-folds`` ships."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelcore.checkpoint import load_checkpoint
from modelcore.models import build_model
from modelcore.preprocessing import FeaturePreprocessor
from tests.support.predictions import predict_probabilities
from tests.training.synthetic import SPOTIFY11_HEADER, spotify11_rows, write_csv
from tests.training.test_train import TINY_MODEL, TINY_TRAIN
from training.cli import main as train_main
from training.features.boosting import BlendParts
from training.features.config import RunConfig
from training.features.crossval import (
    CrossValidation,
    clustered_mean,
    cross_validate,
    paired_difference,
)
from training.features.datasets import load_dataset
from training.features.folds import FoldResult, fold_split, grouped_folds
from training.studies.ambiguity import best_possible_accuracy
from training.studies.ambiguity_cli import main as ambiguity_main
from training.studies.crossval_cli import main as crossval_main

FAST = ["--epochs", "3", "--hidden", "16", "--members", "2", "--device", "cpu", "--no-progress"]


def _groups() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.array([f"artist {i}" for i in rng.integers(0, 40, size=300)])


def test_folds_keep_groups_whole_and_balanced() -> None:
    groups = _groups()
    folds = grouped_folds(groups, 5, seed=1)
    for group in set(groups.tolist()):
        assert len(set(folds[groups == group].tolist())) == 1
    sizes = np.bincount(folds, minlength=5)
    assert sizes.min() > 0
    assert sizes.max() - sizes.min() <= np.unique(groups, return_counts=True)[1].max()
    assert np.array_equal(folds, grouped_folds(groups, 5, seed=1))
    assert not np.array_equal(folds, grouped_folds(groups, 5, seed=2))
    with pytest.raises(ValueError, match="folds must be"):
        grouped_folds(groups, 1, seed=0)


def test_fold_split_tests_the_fold_and_validates_on_other_groups() -> None:
    groups = _groups()
    folds = grouped_folds(groups, 4, seed=0)
    for fold in range(4):
        split = fold_split(groups, folds, fold, valid_fraction=0.2, seed=0)
        split.assert_grouped(groups)
        assert np.array_equal(split.test, np.flatnonzero(folds == fold))
        covered = np.sort(np.concatenate([split.train, split.valid, split.test]))
        assert np.array_equal(covered, np.arange(len(groups)))


def test_clustered_mean_matches_the_plain_error_for_singleton_groups() -> None:
    values = np.random.default_rng(0).normal(size=200)
    mean, error = clustered_mean(values, np.array([str(i) for i in range(200)]))
    assert mean == pytest.approx(values.mean())
    assert error == pytest.approx(values.std(ddof=1) / np.sqrt(200))
    clustered = clustered_mean(np.repeat(values[:20], 10), np.repeat(np.arange(20), 10))[1]
    assert clustered == pytest.approx(values[:20].std(ddof=1) / np.sqrt(20))


@pytest.fixture
def spotify_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "train.csv", SPOTIFY11_HEADER, spotify11_rows(artists=30))


def test_every_row_scored_once_and_round_trips(spotify_csv: Path, tmp_path: Path) -> None:
    dataset = load_dataset("spotify11", spotify_csv)
    config = RunConfig(
        "spotify11", spotify_csv, tmp_path, "x", TINY_MODEL, TINY_TRAIN, importance_repeats=1
    )
    result = cross_validate(dataset, config, folds=3)
    assert np.array_equal(np.sort(result.rows), np.arange(len(dataset)))
    probabilities = result.probabilities()
    assert probabilities.shape == (len(dataset), len(dataset.label_names))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert set(result.importance()) == set(dataset.feature_names)
    summary = result.summary()
    assert (summary["rows"], len(summary["per_fold"])) == (len(dataset), 3)
    assert 0.0 < summary["correct_se"] < summary["correct"] <= 1.0

    parts = []
    for fold in result.folds:
        path = tmp_path / f"fold{fold.fold}.npz"
        CrossValidation(result.labels, result.groups, (fold,)).save(path)
        parts.append(CrossValidation.load(path))
    merged = CrossValidation.merge(parts)
    assert np.allclose(merged.probabilities(), probabilities)
    assert merged.member_epochs() == result.member_epochs()
    assert paired_difference(result, merged) == pytest.approx(
        {"correct": 0.0, "correct_se": 0.0, "log_loss": 0.0, "log_loss_se": 0.0}, abs=1e-6
    )
    with pytest.raises(ValueError, match="appears in two parts"):
        CrossValidation.merge([parts[0], parts[0]])
    again = cross_validate(dataset, config, folds=3, only=[1])
    assert np.allclose(again.folds[0].logits, result.folds[1].logits)


def test_crossval_command_runs_and_compares(
    spotify_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--dataset", "spotify11", "--data", str(spotify_csv), *FAST]
    for fold in range(3):
        save = str(tmp_path / f"a{fold}.npz")
        command = ["run", "--folds", "3", "--fold", str(fold), "--save", save, *data]
        assert crossval_main(command) == 0
    whole = str(tmp_path / "b.npz")
    assert crossval_main(["run", "--folds", "3", "--save", whole, *data, "--dropout", "0.5"]) == 0
    parts = ",".join(str(tmp_path / f"a{fold}.npz") for fold in range(3))
    assert crossval_main(["compare", parts, whole]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "vs first: acc" in lines[-1]


def test_cv_folds_ships_a_model_trained_on_every_row(spotify_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    arguments = ["features", "--dataset", "spotify11", "--data", str(spotify_csv)]
    saved = tmp_path / "folds.npz"
    command = [*arguments, "--out", str(out), *FAST, "--cv-folds", "3", "--cv-save", str(saved)]
    assert train_main(command) == 0
    assert len(CrossValidation.load(saved).folds) == 3
    checkpoint = load_checkpoint(out / "spotify11-mlp" / "1")
    manifest = checkpoint.manifest
    assert "3-fold cross-validation" in manifest.metrics["split_protocol"]
    assert manifest.metrics["evaluated_rows"] == 120
    assert manifest.metrics["accuracy_se"] > 0
    assert manifest.training["hyperparameters"]["cv_folds"] == 3
    assert len(manifest.training["member_epochs"]) == 2
    report = json.loads((out / "spotify11-mlp" / "1" / "report.json").read_text())
    assert len(report["cross_validation"]["per_fold"]) == 3
    assert (out / "spotify11-mlp" / "1" / "training_curves.png").is_file()
    model = build_model(manifest.architecture)
    model.load_state_dict(checkpoint.state_dict)
    preprocessor = FeaturePreprocessor.from_dict(manifest.preprocessing)
    rows = np.full((2, len(preprocessor.feature_names)), np.nan, dtype=np.float32)
    rows[:, [preprocessor.column(name) for name in preprocessor.required]] = 0.5
    assert predict_probabilities(model, preprocessor, rows).shape == (2, 11)


def test_cv_folds_refuses_track_groups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.training.test_train import tiny_gtzan

    tiny_gtzan(tmp_path)
    arguments = ["features", "--dataset", "gtzan30", "--data", str(tmp_path)]
    assert train_main([*arguments, "--out", str(tmp_path), *FAST, "--cv-folds", "3"]) == 1
    assert "artist groups" in capsys.readouterr().err


def test_ambiguity_study_scores_every_row_under_both_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = spotify11_rows(artists=30)
    # Artist 0's songs are also filed under a second class: ambiguous tracks.
    rows += [[*row[:-1], (int(str(row[-1])) + 1) % 11] for row in rows[:4]]
    csv = write_csv(tmp_path / "train.csv", SPOTIFY11_HEADER, rows)
    data = ["--dataset", "spotify11", "--data", str(csv), *FAST]
    saved = {}
    for policy in ("drop", "keep"):
        saved[policy] = tmp_path / f"{policy}.npz"
        command = ["run", "--policy", policy, "--folds", "3", "--save", str(saved[policy])]
        assert ambiguity_main([*command, *data]) == 0
    drop, keep = (np.load(saved[policy]) for policy in ("drop", "keep"))
    assert drop["probabilities"].shape == (124, 11)
    assert int(drop["ambiguous"].sum()) == 8
    assert np.allclose(drop["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(drop["probabilities"], keep["probabilities"])
    both = f"{saved['drop']}+{saved['keep']}"
    assert ambiguity_main(["compare", str(saved["drop"]), str(saved["keep"]), both]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "best possible accuracy on the ambiguous rows: 50.0%" in lines[-4]
    assert "| ambiguous" in lines[-1]
    assert "vs first" in lines[-1]


def test_best_possible_accuracy_takes_each_keys_commonest_label() -> None:
    keys = np.array(["a", "a", "a", "b", "b"])
    assert best_possible_accuracy(keys, np.array([1, 1, 2, 0, 3])) == pytest.approx(3 / 5)


def test_blend_parts_survive_saving_and_take_fold_medians(tmp_path: Path) -> None:
    labels, groups = np.zeros(4, dtype=np.int64), np.array(["a", "b", "c", "d"])
    folds = tuple(
        FoldResult(i, np.array([i]), np.zeros((1, 2), np.float32), 1.0, (3,), blend=parts)
        for i, parts in enumerate(
            [BlendParts(40, 1.1, 0.9), BlendParts(60, 1.3, 1.0), BlendParts(90, 0.9, 1.2)]
        )
    )
    path = tmp_path / "cv.npz"
    CrossValidation(labels, groups, folds).save(path)
    loaded = CrossValidation.load(path)
    assert loaded.folds[1].blend == BlendParts(60, 1.3, 1.0)
    assert loaded.blend() == BlendParts(60, 1.1, 1.0)
    plain = FoldResult(0, np.array([0]), np.zeros((1, 2), np.float32), 1.0, (3,))
    assert CrossValidation(labels, groups, (plain,)).blend() is None
