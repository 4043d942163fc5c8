"""Augmentation keeps shapes and labels, and each transform does what it says."""

from __future__ import annotations

import math

import torch

from modelcore.frontend import FrontEndConfig, LogMelFrontEnd
from tests.support.synthetic_audio import synth_clip
from training.audio.augment import (
    augment_batch,
    mix_within_class,
    random_crop_offsets,
    random_gain,
    spec_augment,
)
from training.audio.config import AugmentConfig


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_augment_batch_keeps_shape_and_is_seeded() -> None:
    batch = torch.randn(8, 1, 32, 50)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    first = augment_batch(batch, labels, AugmentConfig(), 2.0, _generator(1))
    again = augment_batch(batch, labels, AugmentConfig(), 2.0, _generator(1))
    assert first.shape == batch.shape
    assert torch.equal(first, again)
    assert not torch.equal(first, batch)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 0, 1]


def test_crop_offsets_stay_inside_each_track() -> None:
    frames = torch.tensor([130, 131, 500, 60])
    starts = random_crop_offsets(frames, 130, 50, _generator())
    assert starts.shape == (4, 50)
    assert (starts >= 0).all()
    assert (starts + 130 <= frames.clamp(min=130)[:, None]).all()
    assert len(set(starts[2].tolist())) > 10


def test_gain_in_the_spectrogram_equals_gain_on_the_waveform() -> None:
    config = FrontEndConfig(log_offset=1e-12, std=3.0)
    front_end = LogMelFrontEnd(config)
    clip = torch.from_numpy(synth_clip("disco", 3.0, seed=1))[None]
    generator = _generator(5)
    shifted = random_gain(front_end(clip), 6.0, config.std, generator)
    gain_db = (torch.rand(1, generator=_generator(5)) * 2 - 1) * 6.0
    louder = front_end(clip * 10 ** (float(gain_db) / 20))
    torch.testing.assert_close(shifted, louder, atol=2e-3, rtol=0)
    assert math.isclose(
        float((shifted - front_end(clip)).mean()), float(gain_db) * 0.0768, rel_tol=0.01
    )


def test_spec_augment_masks_bands_with_zero() -> None:
    batch = torch.ones(4, 1, 20, 30)
    masked = spec_augment(batch, 1, 5, 1, 4, _generator(2))
    assert masked.shape == batch.shape
    assert ((masked == 0) | (masked == 1)).all()
    assert (masked == 0).any()
    assert spec_augment(batch, 0, 5, 0, 4, _generator()).eq(1).all()


def test_mixing_blends_only_within_a_class() -> None:
    batch = torch.stack([torch.full((1, 2, 3), float(v)) for v in (0, 0, 10, 10, 100)])
    labels = torch.tensor([0, 0, 1, 1, 2])
    mixed = mix_within_class(batch, labels, 1.0, 0.5, _generator(4))
    assert mixed.shape == batch.shape
    assert (mixed[:2] == 0).all()
    assert (mixed[2:4] == 10).all()
    assert (mixed[4] == 100).all()  # no classmate: untouched
