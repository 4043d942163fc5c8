"""Configuration of one ``genre-train audio`` run: frozen, validated, recorded in the manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.fitting import DEVICES

CLASS_WEIGHTINGS = ("balanced", "sqrt", "none")


@dataclass(frozen=True)
class AudioModelConfig:
    """``CNNLSTMClassifier`` keywords other than ``n_mels`` and ``num_classes``."""

    conv_channels: tuple[int, ...] = (16, 32, 64)
    lstm_hidden: int = 64
    head_hidden: int = 128
    dropout: float = 0.3

    def __post_init__(self) -> None:
        if not self.conv_channels or any(width <= 0 for width in self.conv_channels):
            raise ValueError("conv_channels needs at least one positive width")
        if self.lstm_hidden <= 0 or self.head_hidden <= 0:
            raise ValueError("lstm_hidden and head_hidden must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    def architecture(self, n_mels: int, num_classes: int) -> dict[str, Any]:
        """The manifest's ``architecture`` entry."""
        params = {**asdict(self), "n_mels": n_mels, "num_classes": num_classes}
        params["conv_channels"] = list(self.conv_channels)
        return {"type": "cnn_lstm", "params": params}


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation of log-mel crops (see ``training.audio.augment``).

    ``gain_db``: a random gain in ``[-gain_db, gain_db]`` per crop. ``time_masks`` /
    ``freq_masks`` SpecAugment masks of at most ``time_width`` frames / ``freq_width`` bands.
    ``mix_probability``: chance that a crop is mixed with another crop of its own class, with
    weight ``mix_weight`` or less for the partner.
    """

    gain_db: float = 6.0
    time_masks: int = 2
    time_width: int = 16
    freq_masks: int = 2
    freq_width: int = 12
    mix_probability: float = 0.5
    mix_weight: float = 0.4

    def __post_init__(self) -> None:
        if self.gain_db < 0 or self.time_masks < 0 or self.freq_masks < 0:
            raise ValueError("gain_db and mask counts must be non-negative")
        if self.time_width < 0 or self.freq_width < 0:
            raise ValueError("mask widths must be non-negative")
        if not 0.0 <= self.mix_probability <= 1.0 or not 0.0 <= self.mix_weight <= 0.5:
            raise ValueError("mix_probability must be in [0, 1] and mix_weight in [0, 0.5]")


@dataclass(frozen=True)
class AudioTrainConfig:
    """Optimiser and loop. Each epoch draws ``crops_per_track`` random windows of every
    training track (random offsets: the random-crop augmentation); early stopping watches
    held-out track accuracy with ``patience``; ``epochs`` is the one-cycle schedule's length.

    ``class_weighting``: loss weights from inverse class frequency in tracks (``balanced``), their
    square root (``sqrt``: gentler where a class has only a handful of tracks, so a few
    recordings are not weighted tenfold), or ``none``."""

    epochs: int = 30
    crops_per_track: int = 8
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-3
    patience: int = 8
    label_smoothing: float = 0.05
    class_weighting: str = "balanced"
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if min(self.epochs, self.crops_per_track, self.batch_size, self.patience) <= 0:
            raise ValueError("epochs, crops_per_track, batch_size and patience must be positive")
        if self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError("learning_rate must be positive and weight_decay non-negative")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError("label_smoothing must be in [0, 1)")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ValueError(f"class_weighting must be one of {CLASS_WEIGHTINGS}")
        if self.seed < 0:
            raise ValueError("seed must be non-negative")


@dataclass(frozen=True)
class AudioRunConfig:
    """One run: data, windows, split, model, training, publication.

    ``overlap``: fraction of a window shared with the next one when a track is cut into
    evaluation windows (0.5: a 1.5-s hop for 3-s windows). ``refit``: ship a model trained
    again on train+valid for the chosen epoch count (otherwise the train-only model).
    """

    data: Path
    out: Path
    name: str = "gtzan-cnn-lstm"
    window_seconds: float = 3.0
    overlap: float = 0.5
    sample_rate: int = 22050
    n_mels: int = 96
    model: AudioModelConfig = field(default_factory=AudioModelConfig)
    train: AudioTrainConfig = field(default_factory=AudioTrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    splits_dir: Path | None = None
    valid_fraction: float = 0.2
    test_fraction: float = 0.2
    refit: bool = True

    def __post_init__(self) -> None:
        if not 0.5 <= self.window_seconds <= 30.0:
            raise ValueError("window_seconds must be in [0.5, 30]")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError("overlap must be in [0, 1)")
        if not 0 < self.valid_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise ValueError("valid_fraction must be in (0, 1) and test_fraction in [0, 1)")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ValueError("valid and test fractions must leave tracks for training")

    @property
    def hop_seconds(self) -> float:
        return self.window_seconds * (1.0 - self.overlap)

    def hyperparameters(self) -> dict[str, Any]:
        """What the manifest records as ``training.hyperparameters``."""
        return {
            "window_seconds": self.window_seconds,
            "overlap": self.overlap,
            "model": {**asdict(self.model), "conv_channels": list(self.model.conv_channels)},
            "train": asdict(self.train),
            "augment": asdict(self.augment),
            "valid_fraction": self.valid_fraction,
            "test_fraction": self.test_fraction,
            "refit_on_train_and_valid": self.refit,
        }
