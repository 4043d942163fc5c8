"""``genre-train abstention`` end to end on a few real tracks: the version it publishes keeps the
base's genre model bit for bit, adds a detector the server runs, and records its choices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modelcore.checkpoint import load_checkpoint
from server.runner import AudioRunner, split_outputs
from tests.conftest import REPOSITORY_ROOT
from training.abstention.codecs import Codec
from training.abstention.config import AbstentionRunConfig
from training.abstention.pipeline import run_abstention
from training.abstention.voices import VOICES, missing_synthesizers

BASE = REPOSITORY_ROOT / "models" / "gtzan-cnn-lstm" / "3"
# Any CNN-LSTM version can stand in for the train-only member here: speed, not honesty, is tested.
SELECTION = REPOSITORY_ROOT / "models" / "gtzan-cnn-lstm" / "2"


@pytest.mark.timeout(300)  # codec round trips and the ensemble over every clip, on one thread
def test_publishes_a_version_that_abstains(tiny_data: Path, tmp_path: Path) -> None:
    missing = missing_synthesizers(tuple(voice for voices in VOICES.values() for voice in voices))
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed; they make the speech it learns from")
    config = AbstentionRunConfig(
        data=tiny_data,
        base=BASE,
        cnn_lstm_selection=SELECTION,
        out=tmp_path / "models",
        splits_dir=tiny_data / "gtzan" / "splits",
        device="cpu",
        clip_seconds=6.0,
        clips_per_voice=1,
        clips_per_kind=1,
        lossy_copies=1,
        codecs=(Codec("mp3", 64000), Codec("opus", 32000)),
        music_codecs=(Codec("mp3", 64000),),
    )
    outcome = run_abstention(config, progress=False)
    checkpoint = load_checkpoint(outcome.directory)
    base = load_checkpoint(BASE).state_dict
    for key, tensor in base.items():  # the genre model is the base's, bit for bit
        assert torch.equal(checkpoint.state_dict[key], tensor), key
    detector = {key for key in checkpoint.state_dict if key.startswith("detector.")}
    assert detector == {"detector.mean", "detector.scale", "detector.linear.weight",
                        "detector.linear.bias"}  # fmt: skip
    manifest = outcome.manifest
    assert 0.0 <= manifest.min_probability <= 1.0
    assert manifest.min_probability == outcome.figures["chosen"]["min_probability"]
    assert manifest.music_threshold == 0.5
    assert "valid" in manifest.metrics["split_protocol"]
    assert (
        manifest.training["abstention"]["base_weights_sha256"]
        == load_checkpoint(BASE).manifest.weights_sha256
    )
    files = ("abstention.md", "abstention.json", "abstention_threshold.png", "report.md")
    for name in (*files, "abstention_codecs.png"):
        assert (outcome.directory / name).is_file(), name
    # every figure per codec: non-music in each, music in the music codecs, the worst kept
    codecs = outcome.figures["codecs"]
    assert list(codecs) == ["uncoded", "mp3 64k", "opus 32k"]
    assert [("music" in codecs[label]) for label in codecs] == [True, True, False]
    assert outcome.figures["chosen"]["by_codec"].keys() == {"uncoded", "mp3 64k"}
    worst = manifest.metrics["abstention_valid_music_windows_refused_worst_codec"]
    assert worst == max(
        codecs[label]["music"]["window"]["refused"] for label in ("uncoded", "mp3 64k")
    )
    assert "## Per codec" in (outcome.directory / "abstention.md").read_text()

    runner = AudioRunner(checkpoint, torch.device("cpu"))
    assert runner.detects_music
    rng = np.random.default_rng(0)
    noise = (0.3 * rng.standard_normal((2, runner.frontend_config.window_samples))).astype(
        np.float32
    )
    probabilities, music = split_outputs(runner.run(noise))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert ((music >= 0) & (music <= 1)).all()
    base_runner = AudioRunner(load_checkpoint(BASE), torch.device("cpu"))
    np.testing.assert_allclose(probabilities, split_outputs(base_runner.run(noise))[0], atol=1e-6)
