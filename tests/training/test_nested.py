"""Figures added to a published version (``training.studies.restate``) and the nested GTZAN estimate
(``training.studies.nested``): the weights and their checksum never change, a version with other
weights is refused, and every valid track is scored once by a model not chosen on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelcore.checkpoint import load_checkpoint, read_manifest
from tests.training.test_crossval import FAST
from tests.training.test_train import tiny_gtzan
from training.cli import main as train_main
from training.splits import genre_of, read_list
from training.studies.nested import pooled_figures, valid_halves
from training.studies.nested_cli import main as nested_main
from training.studies.restate import add_metrics, copy_new_metrics
from training.studies.restate_cli import main as restate_main


def _published(tmp_path: Path) -> Path:
    tiny_gtzan(tmp_path)
    command = ["features", "--dataset", "gtzan30", "--data", str(tmp_path)]
    assert train_main([*command, "--out", str(tmp_path / "models"), *FAST]) == 0
    return tmp_path / "models" / "gtzan-features-mlp" / "1"


def test_valid_halves_split_each_genre_evenly_and_swap(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    valid = [f"{g}/{g}.{n:05d}.wav" for g in ("jazz", "rock", "pop") for n in range(5)]
    (lists / "train_filtered.txt").write_text("jazz/jazz.00099.wav\n")
    (lists / "valid_filtered.txt").write_text("\n".join(valid) + "\n")
    first, second = valid_halves(lists, tmp_path / "out", seed=3)
    a, b = read_list(first / "valid_filtered.txt"), read_list(first / "test_filtered.txt")
    assert (read_list(second / "valid_filtered.txt"), read_list(second / "test_filtered.txt")) == (
        b,
        a,
    )
    assert sorted(a + b) == sorted(valid)
    assert not set(a) & set(b)
    assert abs(len(a) - len(b)) <= 1
    for genre in ("jazz", "rock", "pop"):
        assert {sum(genre_of(e) == genre for e in half) for half in (a, b)} == {2, 3}
    assert read_list(first / "train_filtered.txt") == ["jazz/jazz.00099.wav"]
    again, _ = valid_halves(lists, tmp_path / "again", seed=3)
    assert read_list(again / "valid_filtered.txt") == a


def test_pooled_figures_weight_each_half_by_its_rows() -> None:
    runs = [
        {"evaluated_rows": 10, "accuracy": 0.5, "log_loss": 1.0, "top3_accuracy": 0.8},
        {"evaluated_rows": 30, "accuracy": 0.7, "log_loss": 2.0, "top3_accuracy": 1.0},
    ]
    figures = pooled_figures("features", runs)
    assert figures["nested_evaluated_rows"] == 40
    assert figures["nested_accuracy"] == pytest.approx(0.65)
    assert figures["nested_log_loss"] == pytest.approx(1.75)


def test_pooled_audio_figures_weight_trained_genres_by_their_own_tracks() -> None:
    runs = [
        {
            "evaluated_tracks": 48,
            "track_accuracy": 0.5,
            "track_log_loss": 1.0,
            "evaluated_tracks_trained_classes": 40,
            "track_accuracy_trained_classes": 0.6,
        },
        {
            "evaluated_tracks": 46,
            "track_accuracy": 0.4,
            "track_log_loss": 2.0,
            "evaluated_tracks_trained_classes": 35,
            "track_accuracy_trained_classes": 0.2,
        },
    ]
    figures = pooled_figures("audio", runs)
    assert figures["nested_evaluated_tracks"] == 94
    assert figures["nested_track_accuracy"] == pytest.approx((0.5 * 48 + 0.4 * 46) / 94)
    assert figures["nested_track_accuracy_trained_classes"] == pytest.approx(
        (0.6 * 40 + 0.2 * 35) / 75
    )


def test_add_metrics_keeps_weights_and_refuses_tampered_ones(tmp_path: Path) -> None:
    version = _published(tmp_path)
    before = load_checkpoint(version).manifest.weights_sha256
    add_metrics(version, {"extra_accuracy": 0.25}, "extra_accuracy: a test figure.")
    add_metrics(version, {"extra_accuracy": 0.5}, "extra_accuracy: a test figure.")
    manifest = load_checkpoint(version).manifest
    assert manifest.weights_sha256 == before
    assert manifest.metrics["extra_accuracy"] == 0.5
    assert manifest.metrics["split_protocol"].count("extra_accuracy: a test figure.") == 1
    with pytest.raises(ValueError, match="protocol"):
        add_metrics(version, {"split_protocol": "x"}, "")
    (version / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="sha256"):
        add_metrics(version, {"extra_accuracy": 0.75}, "")
    assert read_manifest(version).metrics["extra_accuracy"] == 0.5


def test_copy_new_metrics_needs_the_same_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = _published(tmp_path)
    twin = tmp_path / "twin" / "gtzan-features-mlp" / "1"
    shutil.copytree(version, twin)
    add_metrics(twin, {"more_accuracy": 0.4}, "more_accuracy: measured again.")
    assert restate_main([str(twin), str(version)]) == 0
    metrics = read_manifest(version).metrics
    assert metrics["more_accuracy"] == 0.4
    assert metrics["split_protocol"].endswith("more_accuracy: measured again.")
    assert "added more_accuracy" in capsys.readouterr().out

    other = tmp_path / "other"
    other.mkdir()
    command = ["features", "--dataset", "gtzan30", "--data", str(tmp_path), "--seed", "5"]
    assert train_main([*command, "--out", str(other), *FAST]) == 0
    with pytest.raises(ValueError, match="different weights"):
        copy_new_metrics(other / "gtzan-features-mlp" / "1", version)


def test_nested_command_scores_every_valid_track_once(tmp_path: Path) -> None:
    version = _published(tmp_path)
    weights = read_manifest(version).weights_sha256
    flags = ["features", "--dataset", "gtzan30", "--data", str(tmp_path), *FAST]
    command = ["--lists", str(tmp_path / "splits"), "--into", str(version), *flags]
    assert nested_main(command) == 0
    manifest = json.loads((version / "manifest.json").read_text())
    metrics = manifest["metrics"]
    assert metrics["nested_evaluated_rows"] == metrics["evaluated_rows"] == 20
    assert 0.0 <= metrics["nested_accuracy"] <= 1.0
    assert metrics["nested_log_loss"] > 0
    assert "nested_*: figures from tracks that chose nothing" in metrics["split_protocol"]
    assert "(10 and 10 rows" in metrics["split_protocol"]
    assert manifest["weights"]["sha256"] == weights
