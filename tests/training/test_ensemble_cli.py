"""``genre-train ensemble`` end to end on synthetic audio with the real tagger: a version the
server loads, whose members, choices and figures the manifest names.

Needs the musicnn wheel (``make tagger-wheel``; ``make test`` fetches it). The CNN-LSTMs are
untrained stand-ins of the shipped shape: the command's plumbing is under test, not accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.audio_model import write_stand_in
from modelcore.checkpoint import load_checkpoint, read_manifest
from modelcore.frontend import FrontEndConfig
from server.runner import AudioRunner, split_outputs
from tests.support.synthetic_audio import STYLES, write_dataset
from training.cli import main
from training.tagger.wheel import DEFAULT_WHEEL, WHEEL_SHA256

SIZES = {"conv_channels": [4, 8], "lstm_hidden": 8, "head_hidden": 16, "dropout": 0.0}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not DEFAULT_WHEEL.is_file():
        pytest.skip(f"musicnn wheel not found at {DEFAULT_WHEEL} (make tagger-wheel)")
    root = tmp_path_factory.mktemp("ensemble")
    write_dataset(root / "audio", per_style=4, seconds=6.0)
    (root / "splits").mkdir()
    for part, numbers in (("train", (0, 1)), ("valid", (2, 3))):
        entries = [f"{style}/{style}.{n:05d}.wav\n" for style in STYLES for n in numbers]
        (root / "splits" / f"{part}_filtered.txt").write_text("".join(entries))
    frontend = FrontEndConfig(n_mels=32, default_hop_seconds=1.5)
    shipped = write_stand_in(root / "cnn", frontend, name="cnn", labels=STYLES, sizes=SIZES)
    selection = write_stand_in(
        root / "selection", frontend, name="cnn", labels=STYLES, sizes=SIZES, seed=1
    )
    out = root / "models"
    command = ["ensemble", "--data", str(root), "--cnn-lstm", str(shipped),
               "--cnn-lstm-selection", str(selection), "--out", str(out), "--name", "tiny-ens",
               "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(command) == 0
    return out / "tiny-ens" / "1", shipped


def test_publishes_a_version_the_server_loads_with_its_members(
    published: tuple[Path, Path],
) -> None:
    directory, shipped = published
    checkpoint = load_checkpoint(directory)
    manifest = checkpoint.manifest
    assert manifest.architecture["type"] == "audio_ensemble"
    assert [spec["type"] for spec in manifest.architecture["inputs"]] == [
        "log_mel_v1",
        "musicnn_log_mel_v1",
    ]
    members = manifest.members
    assert members["tagger"]["provenance"]["wheel_sha256"] == WHEEL_SHA256
    assert members["cnn_lstm"]["source_weights_sha256"] == read_manifest(shipped).weights_sha256
    shipped_tensors = load_checkpoint(shipped).state_dict
    for key, tensor in shipped_tensors.items():  # the CNN-LSTM member is the shipped one, as is
        assert torch.equal(checkpoint.state_dict[f"cnn_lstm.{key}"], tensor), key
    runner = AudioRunner(checkpoint, torch.device("cpu"))
    windows = np.zeros((2, runner.frontend_config.window_samples), dtype=np.float32)
    probabilities, music = split_outputs(runner.run(windows))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert np.isnan(music).all()  # no music detector in a version the ensemble command writes


def test_the_manifest_names_its_choices_and_where_each_figure_comes_from(
    published: tuple[Path, Path],
) -> None:
    directory, _ = published
    manifest = read_manifest(directory)
    metrics = manifest.metrics
    for key in ("track_accuracy", "nested_track_accuracy", "cnn_lstm_track_accuracy",
                "tagger_head_track_accuracy", "nested_track_log_loss"):  # fmt: skip
        assert 0.0 <= metrics[key] <= 10.0, key
    assert metrics["evaluated_tracks"] == metrics["nested_evaluated_tracks"] == 6
    assert {f"nested_track_accuracy_{style}" for style in STYLES} <= set(metrics)
    assert "nested_*: from tracks that chose nothing" in manifest.split_protocol
    choices = manifest.training["choices"]
    assert set(choices) == {"c", "cnn_weight", "prior_strength", "temperature"}
    assert choices["temperature"] == manifest.temperature
    assert len(manifest.training["nested_choices"]) == 2
    assert (directory / "report.md").read_text().startswith("# tiny-ens")
