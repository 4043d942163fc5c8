"""The front-end gives the same spectrogram for audio from a file as for the same samples given
as an array, and refuses a manifest entry it cannot reproduce."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from modelcore.frontend import FrontEndConfig, LogMelFrontEnd
from tests.support.predictions import load_for_model
from tests.support.synthetic_audio import synth_clip, write_clip
from training.audio.data import decode_file
from training.audio.train import SpectrogramBank


def _spectrogram(config: FrontEndConfig, samples: np.ndarray) -> torch.Tensor:
    with torch.inference_mode():
        result: torch.Tensor = LogMelFrontEnd(config)(
            torch.from_numpy(samples[: config.window_samples])[None]
        )
    return result


def test_file_and_array_give_identical_spectrograms(tmp_path: Path) -> None:
    config = FrontEndConfig(mean=-3.0, std=2.5)
    clip = synth_clip("disco", 3.5, config.sample_rate, seed=3)
    path = write_clip(tmp_path / "disco.wav", clip, config.sample_rate)
    decoded, rate = decode_file(path)
    # What the wire carries: the same 16-bit samples, scaled as soundfile scales them.
    pcm, _ = soundfile.read(str(path), dtype="int16")
    as_array = (pcm.astype(np.float32) / 32768.0).astype(np.float32)
    assert rate == config.sample_rate
    assert torch.equal(_spectrogram(config, decoded), _spectrogram(config, as_array))


def test_stereo_file_is_down_mixed_and_resampled(tmp_path: Path) -> None:
    config = FrontEndConfig()
    clip = synth_clip("classical", 3.2, 44100, seed=1)
    path = tmp_path / "stereo.flac"
    soundfile.write(str(path), np.stack([clip, clip], axis=1), 44100, subtype="PCM_16")
    samples = load_for_model(path, config)
    assert samples.dtype == np.float32
    assert abs(len(samples) - round(3.2 * config.sample_rate)) <= 1
    assert _spectrogram(config, samples).shape == (1, 1, config.n_mels, config.frames)


def test_shared_real_audio_file_matches_array_path(data_dir: Path) -> None:
    path = data_dir / "gtzan" / "audio" / "jazz" / "jazz.00000.ogg"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    config = FrontEndConfig()
    decoded, rate = decode_file(path)
    raw, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    assert rate == 22050
    assert torch.equal(_spectrogram(config, decoded), _spectrogram(config, raw.mean(axis=1)))


def test_whole_track_crop_matches_window_away_from_edges() -> None:
    config = FrontEndConfig(mean=-4.0, std=3.0)
    clip = synth_clip("metal", 6.0, config.sample_rate, seed=2)
    bank = SpectrogramBank.build([clip], config)
    start = 20
    crop = bank.crops([0], [start])
    offset = start * config.hop_length
    window = _spectrogram(config, clip[offset:])
    edge = config.n_fft // (2 * config.hop_length) + 1
    torch.testing.assert_close(crop[..., edge:-edge], window[..., edge:-edge], atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "mfcc_v1"},
        {"sample_rate": 22050},
        {**FrontEndConfig().to_dict(), "pre_emphasis": 0.97},
    ],
)
def test_from_dict_refuses_what_it_cannot_reproduce(entry: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="front-end"):
        FrontEndConfig.from_dict(entry)


def test_from_dict_round_trips() -> None:
    config = FrontEndConfig(n_mels=64, mean=-5.5, std=3.25, default_hop_seconds=1.5)
    assert FrontEndConfig.from_dict(config.to_dict()) == config
