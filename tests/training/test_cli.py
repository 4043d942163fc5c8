"""``genre-train features`` end to end on tiny synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelcore.checkpoint import load_checkpoint
from tests.training.synthetic import SPOTIFY11_HEADER, spotify11_rows, write_csv
from tests.training.test_train import tiny_gtzan
from training.cli import main

FAST = ["--epochs", "3", "--hidden", "16", "--members", "2", "--device", "cpu", "--no-progress"]


def test_gtzan_run_publishes_versions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny_gtzan(tmp_path)
    out = tmp_path / "models"
    arguments = ["features", "--dataset", "gtzan30", "--data", str(tmp_path), "--out", str(out)]
    assert main([*arguments, *FAST, "--seed", "1"]) == 0
    assert main([*arguments, *FAST, "--seed", "1"]) == 0
    assert "wrote" in capsys.readouterr().out
    versions = sorted(p.name for p in (out / "gtzan-features-mlp").iterdir())
    assert versions == ["1", "2"]
    manifest = load_checkpoint(out / "gtzan-features-mlp" / "2").manifest
    assert manifest.training["seed"] == 1
    assert manifest.architecture["params"]["hidden_sizes"] == [16]
    assert manifest.architecture["type"] == "mlp_ensemble"
    assert len(manifest.training["member_epochs"]) == 2
    assert manifest.kind == "features"
    report = json.loads((out / "gtzan-features-mlp" / "2" / "report.json").read_text())
    assert report["split_sizes"] == {"train": 40, "valid": 20, "test": 0, "outside": 0}


def test_spotify11_run_with_bad_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = spotify11_rows()
    rows[5][4] = "loud"
    path = write_csv(tmp_path / "train.csv", SPOTIFY11_HEADER, rows)
    out = tmp_path / "models"
    arguments = ["features", "--dataset", "spotify11", "--data", str(path), "--out", str(out)]
    assert main([*arguments, *FAST]) == 1
    assert "line 7, column 'energy'" in capsys.readouterr().err
    assert main([*arguments, *FAST, "--drop-bad-rows", "--name", "s11"]) == 0
    manifest = load_checkpoint(out / "s11" / "1").manifest
    assert manifest.training["data_report"]["bad_rows_dropped"] == {
        "energy: not a finite number": 1
    }
    assert "test" in manifest.metrics["split_protocol"]
    assert manifest.input_schema["imputable"] == ["Popularity", "instrumentalness", "key"]


def test_bad_arguments_exit_early(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["features", "--dataset", "gtzan30", "--data", "x", "--hidden", "a,b"])
    assert "expected widths" in capsys.readouterr().err


def test_conflicts_policy_reaches_the_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = spotify11_rows()
    rows.append([*rows[0][:-1], (int(str(rows[0][-1])) + 1) % 11])  # the first song, another class
    path = write_csv(tmp_path / "train.csv", SPOTIFY11_HEADER, rows)
    out = tmp_path / "models"
    arguments = ["features", "--dataset", "spotify11", "--data", str(path), "--out", str(out)]
    assert main([*arguments, *FAST, "--conflicts", "keep"]) == 0
    training = load_checkpoint(out / "spotify11-mlp" / "1").manifest.training
    assert training["hyperparameters"]["conflicting_duplicates"] == "keep"
    assert training["data_report"]["conflicting_duplicates_kept"] == 2
    assert training["data_report"]["rows_kept"] == len(rows)
    tiny_gtzan(tmp_path)
    gtzan = ["features", "--dataset", "gtzan30", "--data", str(tmp_path), "--out", str(out)]
    assert main([*gtzan, *FAST, "--conflicts", "keep"]) == 1
    assert "Spotify sets only" in capsys.readouterr().err
