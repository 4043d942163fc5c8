"""Training-time augmentation of normalised log-mel crops (B, 1, n_mels, frames).

Everything works in the spectrogram domain, on spectrograms computed once per track, so an
epoch costs no STFTs:

- random crops: each epoch draws fresh window offsets in every training track;
- gain: a gain of ``g`` dB multiplies power by ``10^(g/10)``, i.e. adds ``g ln(10) / 10`` to the
  log-mel (exact up to the front-end's tiny ``log_offset``), divided by the normalising std;
- SpecAugment: time and frequency bands set to 0, the dataset mean after normalisation;
- mixing within a class: a crop blended with another crop of the same class (so the label
  stays), weight at most ``mix_weight`` on the partner.

All randomness comes from the ``torch.Generator`` passed in, so runs repeat given the seed.
"""

from __future__ import annotations

import math

import torch

from training.audio.config import AugmentConfig


def random_crop_offsets(
    track_frames: torch.Tensor, frames: int, crops_per_track: int, generator: torch.Generator
) -> torch.Tensor:
    """(tracks,) frame counts -> (tracks, crops_per_track) start frames, uniform over each
    track's valid starts (0 for a track no longer than one window)."""
    room = (track_frames - frames).clamp(min=0) + 1
    uniform = torch.rand((len(track_frames), crops_per_track), generator=generator)
    return (uniform * room.unsqueeze(1)).long()


def random_gain(
    batch: torch.Tensor, max_db: float, std: float, generator: torch.Generator
) -> torch.Tensor:
    """Adds a per-crop gain drawn uniformly from ``[-max_db, max_db]`` dB."""
    if max_db <= 0:
        return batch
    gain_db = (torch.rand(batch.shape[0], generator=generator) * 2 - 1) * max_db
    shift = gain_db * (math.log(10.0) / 10.0) / std
    return batch + shift.view(-1, 1, 1, 1).to(batch.device)


def spec_augment(
    batch: torch.Tensor,
    time_masks: int,
    time_width: int,
    freq_masks: int,
    freq_width: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Zeroes ``time_masks`` bands of up to ``time_width`` frames and ``freq_masks`` bands of up
    to ``freq_width`` mel bins in every crop (SpecAugment without time warping)."""
    size, _, n_mels, frames = batch.shape
    keep = torch.ones(size, 1, n_mels, frames, dtype=torch.bool)
    for count, width, axis_size, axis in (
        (time_masks, time_width, frames, 3),
        (freq_masks, freq_width, n_mels, 2),
    ):
        positions = torch.arange(axis_size)
        for _ in range(count if width > 0 else 0):
            widths = torch.randint(0, min(width, axis_size) + 1, (size,), generator=generator)
            starts = (torch.rand(size, generator=generator) * (axis_size - widths + 1)).long()
            inside = (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])
            shape = (size, 1, 1, axis_size) if axis == 3 else (size, 1, axis_size, 1)
            keep &= ~inside.view(shape)
    return batch * keep.to(batch.device)


def mix_within_class(
    batch: torch.Tensor,
    labels: torch.Tensor,
    probability: float,
    max_weight: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Blends a ``probability`` share of crops with a random crop of the same class in the
    batch, ``(1 - w) x + w partner`` with ``w`` uniform in ``[0, max_weight]``. Labels are
    unchanged by construction; a crop with no classmate in the batch is left alone."""
    if probability <= 0 or max_weight <= 0:
        return batch
    size = batch.shape[0]
    scores = torch.rand((size, size), generator=generator)
    same = labels.cpu()[:, None] == labels.cpu()[None, :]
    same.fill_diagonal_(False)
    scores = torch.where(same, scores, torch.full_like(scores, -1.0))
    partners = scores.argmax(dim=1)
    has_partner = same.any(dim=1)
    chosen = has_partner & (torch.rand(size, generator=generator) < probability)
    weights = torch.rand(size, generator=generator) * max_weight * chosen
    weights = weights.view(-1, 1, 1, 1).to(batch.device)
    return (1 - weights) * batch + weights * batch[partners.to(batch.device)]


def augment_batch(
    batch: torch.Tensor,
    labels: torch.Tensor,
    config: AugmentConfig,
    std: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Gain, then mixing within a class, then SpecAugment masks; shapes and labels kept."""
    batch = random_gain(batch, config.gain_db, std, generator)
    batch = mix_within_class(batch, labels, config.mix_probability, config.mix_weight, generator)
    return spec_augment(
        batch,
        config.time_masks,
        config.time_width,
        config.freq_masks,
        config.freq_width,
        generator,
    )
