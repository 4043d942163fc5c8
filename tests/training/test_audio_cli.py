"""``genre-train audio`` end to end on tiny synthetic audio: a loadable versioned checkpoint
whose manifest alone rebuilds the front-end and model and reproduces the training code's
track probabilities, the way the server computes them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modelcore.checkpoint import load_checkpoint
from modelcore.frontend import FrontEndConfig, LogMelFrontEnd
from modelcore.models import build_model
from tests.support.predictions import load_for_model
from tests.support.synthetic_audio import write_dataset
from training.audio.data import cut_windows
from training.cli import main

TINY = [
    "--epochs", "1", "--crops-per-track", "3", "--device", "cpu", "--no-progress",
    "--n-mels", "32", "--conv-channels", "8,16", "--lstm-hidden", "16", "--head-hidden", "32",
]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny")
    data = write_dataset(root / "audio", per_style=4, seconds=8.0)
    out = root / "models"
    assert main(["audio", "--data", str(data), "--out", str(out), "--name", "tiny", *TINY]) == 0
    return data, out / "tiny" / "1"


def test_publishes_a_loadable_audio_version(trained: tuple[Path, Path]) -> None:
    _, directory = trained
    checkpoint = load_checkpoint(directory)
    manifest = checkpoint.manifest
    assert manifest.kind == "audio"
    assert manifest.version == 1
    assert manifest.labels == ("classical", "disco", "metal")
    assert manifest.architecture["type"] == "cnn_lstm"
    assert manifest.temperature > 0
    for key in ("track_accuracy", "window_accuracy", "track_macro_f1", "track_log_loss"):
        assert isinstance(manifest.metrics[key], float)
    assert "no track has windows on two sides" in manifest.metrics["split_protocol"]
    training = manifest.training
    assert training["seed"] == 0
    assert training["device"] == "cpu"
    assert len(training["data_fingerprint"]) == 64
    assert manifest.input_schema["audio"]["window_samples"] == 66150
    for name in ("report.json", "report.md", "training_curves.png", "confusion_matrix.png"):
        assert 0 < (directory / name).stat().st_size < 150_000
    assert "Split protocol" in (directory / "report.md").read_text()


def test_manifest_reproduces_the_training_probabilities(trained: tuple[Path, Path]) -> None:
    data, directory = trained
    checkpoint = load_checkpoint(directory)
    manifest = checkpoint.manifest
    config = FrontEndConfig.from_dict(manifest.frontend)
    front_end = LogMelFrontEnd(config)
    model = build_model(manifest.architecture)
    model.load_state_dict(checkpoint.state_dict)
    model.eval()
    temperature = manifest.temperature
    evaluation = json.loads((directory / "report.json").read_text())["evaluation"]
    hop = round(config.default_hop_seconds * config.sample_rate)
    assert evaluation["track_ids"]
    for track, expected in zip(
        evaluation["track_ids"], evaluation["track_probabilities"], strict=True
    ):
        style = track.split(".")[0]
        samples = load_for_model(data / style / f"{track}.wav", config)
        windows = torch.from_numpy(cut_windows(samples, config.window_samples, hop))
        with torch.inference_mode():
            probabilities = torch.softmax(model(front_end(windows)) / temperature, dim=1)
        np.testing.assert_allclose(probabilities.mean(dim=0).numpy(), expected, atol=1e-5)


def test_bad_arguments_exit_with_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audio", "--data", str(tmp_path), "--overlap", "1.5"]) == 2
    assert "overlap" in capsys.readouterr().err
    assert main(["audio", "--data", str(tmp_path), "--out", str(tmp_path / "m")]) == 1
    assert "no <label>/<file> audio" in capsys.readouterr().err
