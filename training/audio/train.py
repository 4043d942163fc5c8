"""The training loop for the CNN-LSTM on log-mel windows.

Spectrograms are computed once per track (``SpectrogramBank``) and every epoch trains on fresh
random crops of them, augmented in the spectrogram domain (``training.audio.augment``). Held-out
tracks are scored exactly as the server scores them (``EvalWindows``): windows cut from the
waveform, each through the manifest's front-end, window probabilities averaged per track.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from modelcore.frontend import FloatArray, FrontEndConfig, LogMelFrontEnd
from modelcore.models import build_model
from training.audio.augment import augment_batch, random_crop_offsets
from training.audio.config import AudioModelConfig, AudioTrainConfig, AugmentConfig
from training.audio.data import IntArray, cut_windows
from training.evaluate import log_loss
from training.fitting import class_weights, resolve_device, seeded

_CHUNK = 64


def _front_end_chunks(front_end: LogMelFrontEnd, windows: FloatArray) -> torch.Tensor:
    """(N, samples) -> (N, 1, n_mels, frames), computed in chunks to bound memory."""
    with torch.inference_mode():
        parts = [
            front_end(torch.from_numpy(windows[start : start + _CHUNK]))
            for start in range(0, len(windows), _CHUNK)
        ]
    return torch.cat(parts).clone()


@dataclass
class SpectrogramBank:
    """Log-mel of whole tracks, (n_mels, frames_of_track) each, for random crops."""

    spectrograms: list[torch.Tensor]
    frames: int

    @classmethod
    def build(
        cls, waveforms: Sequence[FloatArray], config: FrontEndConfig, progress: bool = False
    ) -> SpectrogramBank:
        """``config``'s log-mel of each whole track (zero-padded to a window if shorter). A crop
        at frame ``f`` equals the front-end's output for the window starting at sample
        ``f * hop_length`` except in the frames the STFT's edge padding touches."""
        front_end = LogMelFrontEnd(config)
        spectrograms = []
        for samples in tqdm(waveforms, desc="log-mel", disable=not progress, leave=False):
            if len(samples) < config.window_samples:
                samples = np.pad(samples, (0, config.window_samples - len(samples)))
            with torch.inference_mode():
                spectrograms.append(front_end(torch.from_numpy(samples)[None])[0, 0].clone())
        return cls(spectrograms, config.frames)

    def statistics(self, tracks: Sequence[int]) -> tuple[float, float]:
        """Mean and standard deviation over every frame of ``tracks``."""
        values = torch.cat([self.spectrograms[t].flatten() for t in tracks]).double()
        return float(values.mean()), float(values.std())

    def normalised(self, mean: float, std: float) -> SpectrogramBank:
        return SpectrogramBank([(s - mean) / std for s in self.spectrograms], self.frames)

    def crops(self, tracks: Sequence[int], starts: Sequence[int]) -> torch.Tensor:
        """(B, 1, n_mels, frames) crops of ``tracks`` starting at frames ``starts``."""
        return torch.stack(
            [
                self.spectrograms[track][:, start : start + self.frames]
                for track, start in zip(tracks, starts, strict=True)
            ]
        ).unsqueeze(1)


@dataclass
class EvalWindows:
    """Every window of some tracks through the exact serving front-end."""

    spectrograms: torch.Tensor  # (windows, 1, n_mels, frames)
    window_track: IntArray  # (windows,) position of each window's track in ``labels``
    labels: IntArray  # (tracks,)

    @classmethod
    def build(
        cls,
        waveforms: Sequence[FloatArray],
        labels: IntArray,
        config: FrontEndConfig,
        hop_samples: int,
    ) -> EvalWindows:
        front_end = LogMelFrontEnd(config)
        cuts = [cut_windows(samples, config.window_samples, hop_samples) for samples in waveforms]
        owner = np.concatenate([np.full(len(cut), i, dtype=np.int64) for i, cut in enumerate(cuts)])
        return cls(_front_end_chunks(front_end, np.concatenate(cuts)), owner, labels)

    @property
    def window_labels(self) -> IntArray:
        result: IntArray = self.labels[self.window_track]
        return result


def window_logits(model: nn.Module, spectrograms: torch.Tensor) -> torch.Tensor:
    """(N, 1, n_mels, frames) -> (N, C) logits on the CPU, in evaluation mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        parts = [
            model(spectrograms[start : start + _CHUNK].to(device)).cpu()
            for start in range(0, len(spectrograms), _CHUNK)
        ]
    model.train(was_training)
    return torch.cat(parts)


def track_probabilities(
    window_probabilities: torch.Tensor, window_track: IntArray, tracks: int
) -> FloatArray:
    """Mean of window probabilities per track, as the server aggregates: (tracks, C)."""
    index = torch.from_numpy(window_track)
    sums = torch.zeros(tracks, window_probabilities.shape[1], dtype=torch.float64)
    sums.index_add_(0, index, window_probabilities.double())
    counts = torch.bincount(index, minlength=tracks).double().clamp(min=1)
    result: FloatArray = (sums / counts[:, None]).float().numpy()
    return result


@dataclass(frozen=True)
class AudioEpoch:
    epoch: int
    train_loss: float
    learning_rate: float
    valid_window_accuracy: float | None = None
    valid_track_accuracy: float | None = None
    valid_log_loss: float | None = None


@dataclass
class AudioTrainResult:
    model: nn.Module
    architecture: dict[str, object]
    best_epoch: int
    epochs_run: int
    history: list[AudioEpoch] = field(default_factory=list)


def train_audio_model(
    bank: SpectrogramBank,
    tracks: IntArray,
    labels: IntArray,
    num_classes: int,
    std: float,
    model_config: AudioModelConfig,
    config: AudioTrainConfig,
    augment: AugmentConfig,
    held_out: EvalWindows | None = None,
    fixed_epochs: int | None = None,
    progress: bool = True,
) -> AudioTrainResult:
    """Trains on random crops of ``bank`` tracks ``tracks`` (labels ``labels[tracks]``).

    With ``held_out`` it keeps the weights of the epoch with the best held-out track accuracy
    (ties: lower window log-loss) and stops after ``patience`` epochs without one; with
    ``fixed_epochs`` (a refit) it runs that many epochs of the same ``config.epochs``-long
    one-cycle schedule and keeps the last weights.
    """
    if (held_out is None) == (fixed_epochs is None):
        raise ValueError("give either held-out windows or fixed_epochs")
    device = resolve_device(config.device)
    n_mels = int(bank.spectrograms[0].shape[0])
    architecture = model_config.architecture(n_mels, num_classes)
    with seeded(config.seed, device):
        model = build_model(architecture).to(device)
        generator = torch.Generator().manual_seed(config.seed)
        track_labels = torch.from_numpy(labels[tracks])
        frame_counts = torch.tensor([bank.spectrograms[t].shape[1] for t in tracks])
        per_epoch = len(tracks) * config.crops_per_track
        steps = max(1, -(-per_epoch // config.batch_size))
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            config.learning_rate,
            total_steps=max(config.epochs * steps, 10) + 1,
            pct_start=0.2,
        )
        weights = loss_weights(labels[tracks], num_classes, config.class_weighting)
        loss_function = nn.CrossEntropyLoss(
            weight=None if weights is None else weights.to(device),
            label_smoothing=config.label_smoothing,
        )
        last = fixed_epochs if fixed_epochs is not None else config.epochs
        history: list[AudioEpoch] = []
        best: tuple[float, float] = (float("-inf"), float("-inf"))
        best_state, best_epoch = copy.deepcopy(model.state_dict()), 0
        bar = tqdm(range(1, last + 1), desc="epochs", disable=not progress, leave=False)
        for epoch in bar:
            model.train()
            starts = random_crop_offsets(
                frame_counts, bank.frames, config.crops_per_track, generator
            )
            order = torch.randperm(per_epoch, generator=generator)
            total = 0.0
            for begin in range(0, per_epoch, config.batch_size):
                items = order[begin : begin + config.batch_size]
                if len(items) < 2:
                    continue  # BatchNorm cannot normalise a single crop
                which = items // config.crops_per_track
                batch = bank.crops(
                    [int(tracks[i]) for i in which], starts.flatten()[items].tolist()
                )
                targets = track_labels[which]
                batch = augment_batch(batch, targets, augment, std, generator)
                loss = loss_function(model(batch.to(device)), targets.to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += float(loss.detach()) * len(items)
            record = AudioEpoch(epoch, total / per_epoch, optimizer.param_groups[0]["lr"])
            if held_out is not None:
                record = _validate(model, record, held_out, num_classes)
                score = (record.valid_track_accuracy or 0.0, -(record.valid_log_loss or 0.0))
                if score > best:
                    best, best_epoch = score, epoch
                    best_state = copy.deepcopy(model.state_dict())
                bar.set_postfix(track_acc=f"{record.valid_track_accuracy:.3f}", best=best_epoch)
            history.append(record)
            if held_out is not None and epoch - best_epoch >= config.patience:
                break
        if fixed_epochs is not None:
            best_epoch, best_state = last, model.state_dict()
        model.load_state_dict(best_state)
        model.eval()
    return AudioTrainResult(model.cpu(), architecture, best_epoch, len(history), history)


def loss_weights(labels: IntArray, num_classes: int, weighting: str) -> torch.Tensor | None:
    """Per-class loss weights, mean 1: balanced, their square root, or None."""
    if weighting == "none":
        return None
    weights = class_weights(labels, num_classes)
    if weighting == "sqrt":
        weights = weights.sqrt()
        weights = weights / weights.mean()
    return weights


def _validate(
    model: nn.Module, record: AudioEpoch, held_out: EvalWindows, num_classes: int
) -> AudioEpoch:
    probabilities = torch.softmax(window_logits(model, held_out.spectrograms), dim=1)
    window_labels = held_out.window_labels
    tracks = track_probabilities(probabilities, held_out.window_track, len(held_out.labels))
    return AudioEpoch(
        epoch=record.epoch,
        train_loss=record.train_loss,
        learning_rate=record.learning_rate,
        valid_window_accuracy=float((probabilities.argmax(dim=1).numpy() == window_labels).mean()),
        valid_track_accuracy=float((tracks.argmax(axis=1) == held_out.labels).mean()),
        valid_log_loss=log_loss(probabilities.numpy(), window_labels),
    )
