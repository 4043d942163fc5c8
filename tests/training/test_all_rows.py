"""Figures over every labelled row: rows of tracks filed under two genres are scored by the fold
of their artist without changing training, and the three all-rows figures reach the manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelcore.checkpoint import load_checkpoint, read_manifest
from tests.training.synthetic import SPOTIFY11_HEADER, spotify11_row, spotify11_rows, write_csv
from tests.training.test_crossval import FAST
from training.cli import main as train_main
from training.features.all_rows import any_label_correct
from training.features.crossval import CrossValidation
from training.features.folds import held_out_folds


def test_held_out_rows_join_their_artists_fold_and_new_artists_are_dealt() -> None:
    groups = np.array(["a", "a", "b", "c", "d"])
    folds = np.array([0, 0, 1, 2, 1])
    held = np.array(["b", "a", "x", "y", "z", "x", "w"])
    assigned = held_out_folds(groups, folds, held, 3, seed=0)
    assert assigned[:2].tolist() == [1, 0]
    assert assigned[2] == assigned[5]
    unseen = {g: int(f) for g, f in zip(held[2:].tolist(), assigned[2:].tolist(), strict=True)}
    assert sorted(np.bincount(list(unseen.values()), minlength=3).tolist()) == [1, 1, 2]
    assert np.array_equal(assigned, held_out_folds(groups, folds, held, 3, seed=0))


def test_any_label_counts_every_genre_the_data_gives_a_track() -> None:
    keys = np.array(["t1", "t1", "t2", "t3"])
    labels = np.array([0, 1, 2, 3])
    predicted = np.array([1, 1, 0, 3])
    assert any_label_correct(predicted, keys, labels).tolist() == [1.0, 1.0, 0.0, 1.0]


def _with_ambiguous_tracks(tmp_path: Path) -> Path:
    rows = spotify11_rows(artists=30)
    # Artist 0's four songs are also filed under the next class; artist 99 only ever appears
    # with a song filed under two classes, so no kept row tells its fold.
    rows += [[*row[:-1], (int(str(row[-1])) + 1) % 11] for row in rows[:4]]
    rows += [spotify11_row("Artist 99", "Only", label, seed=7) for label in (2, 5)]
    return write_csv(tmp_path / "train.csv", SPOTIFY11_HEADER, rows)


def test_cv_run_reports_all_rows_with_identical_weights(tmp_path: Path) -> None:
    csv = _with_ambiguous_tracks(tmp_path)
    out = tmp_path / "models"
    saved = tmp_path / "folds.npz"
    command = ["features", "--dataset", "spotify11", "--data", str(csv), "--out", str(out)]
    cv = ["--no-trees", "--cv-folds", "3"]
    assert train_main([*command, *FAST, *cv, "--cv-save", str(saved)]) == 0
    metrics = read_manifest(out / "spotify11-mlp" / "1").metrics
    assert metrics["evaluated_rows"] == 116
    assert (metrics["evaluated_rows_all"], metrics["ambiguous_rows"]) == (126, 10)
    for name in ("accuracy_all_rows", "log_loss_all_rows", "accuracy_any_label"):
        assert metrics[f"{name}_se"] > 0
    # A row of an ambiguous track is right on at most one of its labels, so exact accuracy
    # over all rows cannot beat the any-label figure, and the ambiguous rows drag it down.
    assert metrics["accuracy_all_rows"] <= metrics["accuracy_any_label"]
    assert metrics["accuracy_ambiguous_rows"] <= 0.5
    assert "accuracy_any_label counts a prediction right" in metrics["split_protocol"]
    assert "all 126 distinct labelled rows" in metrics["split_protocol"]
    validation = CrossValidation.load(saved)
    assert np.array_equal(np.sort(validation.held_out_rows), np.arange(10))
    assert validation.held_out_probabilities().shape == (10, 11)

    # Training never sees the held-out rows: the same run on a file without the ambiguous
    # tracks at all ships bit-identical weights.
    unambiguous = spotify11_rows(artists=30)[4:]
    (tmp_path / "plain").mkdir()
    plain = write_csv(tmp_path / "plain" / "train.csv", SPOTIFY11_HEADER, unambiguous)
    again = tmp_path / "again"
    command = ["features", "--dataset", "spotify11", "--data", str(plain), "--out", str(again)]
    assert train_main([*command, *FAST, *cv]) == 0
    first = load_checkpoint(out / "spotify11-mlp" / "1").manifest.weights_sha256
    second = load_checkpoint(again / "spotify11-mlp" / "1").manifest.weights_sha256
    assert first == second
    assert "evaluated_rows_all" not in read_manifest(again / "spotify11-mlp" / "1").metrics


def test_keep_policy_runs_report_single_genre_and_all_rows_figures(tmp_path: Path) -> None:
    """A run that trains on the rows of tracks with two genres scores them out of fold like
    the others: the headline covers the tracks with one genre, *_all_rows every row."""
    csv = _with_ambiguous_tracks(tmp_path)
    out = tmp_path / "models"
    command = ["features", "--dataset", "spotify11", "--data", str(csv), "--out", str(out)]
    assert (
        train_main([*command, *FAST, "--no-trees", "--cv-folds", "3", "--conflicts", "keep"]) == 0
    )
    metrics = read_manifest(out / "spotify11-mlp" / "1").metrics
    assert metrics["evaluated_rows_all"] == 126
    assert metrics["ambiguous_rows"] > 0
    assert metrics["evaluated_rows"] + metrics["ambiguous_rows"] == 126
    assert 0.0 <= metrics["accuracy_ambiguous_rows"] <= 1.0
    assert metrics["accuracy_any_label"] >= metrics["accuracy_all_rows"]


@pytest.mark.parametrize("folds", [2, 4])
def test_held_out_folds_stay_in_range(folds: int) -> None:
    groups = np.array([f"g{i}" for i in range(8)])
    assigned = held_out_folds(groups, np.arange(8) % folds, np.array(["new", "g3"]), folds, 1)
    assert assigned.min() >= 0
    assert assigned.max() < folds
    assert assigned[1] == 3 % folds
