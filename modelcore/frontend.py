"""The one audio front-end, shared by training and serving: mono float32 PCM -> log-mel windows.

Training decodes files (``training.audio.data``), the server decodes streamed PCM; both then
resample to
the model's rate with ``resample`` and call the same ``LogMelFrontEnd`` built from the manifest's
``frontend`` entry, so identical audio gives identical spectrograms on both sides. The server
refuses a manifest whose front-end it cannot rebuild (``FrontEndConfig.from_dict`` raises).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torchaudio
from torch import nn

FloatArray = npt.NDArray[np.float32]
FRONTEND_TYPE = "log_mel_v1"


@dataclass(frozen=True)
class FrontEndConfig:
    """Everything that decides the spectrogram; stored in the manifest under ``frontend``."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 96
    f_min: float = 20.0
    f_max: float = 11025.0
    window_seconds: float = 3.0
    default_hop_seconds: float = 1.0
    log_offset: float = 1e-6
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if not 8000 <= self.sample_rate <= 48000:
            raise ValueError("sample_rate must be in 8000..48000")
        if self.n_fft <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise ValueError("n_fft, hop_length and n_mels must be positive")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError("need 0 <= f_min < f_max <= sample_rate / 2")
        if self.window_seconds <= 0 or self.default_hop_seconds <= 0:
            raise ValueError("window_seconds and default_hop_seconds must be positive")
        if self.std <= 0 or self.log_offset <= 0:
            raise ValueError("std and log_offset must be positive")

    @property
    def window_samples(self) -> int:
        """Samples of one model window at the model's rate."""
        return round(self.window_seconds * self.sample_rate)

    @property
    def frames(self) -> int:
        """Spectrogram frames of one window (centred STFT)."""
        return 1 + self.window_samples // self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return {"type": FRONTEND_TYPE, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrontEndConfig:
        """Rebuilds a front-end, refusing one this code cannot reproduce exactly."""
        kind = data.get("type")
        if kind != FRONTEND_TYPE:
            raise ValueError(f"front-end type {kind!r} is not supported (only {FRONTEND_TYPE})")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known - {"type"}
        if unknown:
            raise ValueError(f"front-end has unknown parameters {sorted(unknown)}")
        return cls(**{key: value for key, value in data.items() if key in known})


class LogMelFrontEnd(nn.Module):
    """(B, samples) mono waveforms at ``config.sample_rate`` -> (B, 1, n_mels, frames).

    Log-mel power spectrogram, then the dataset-wide normalisation from the manifest.
    """

    def __init__(self, config: FrontEndConfig) -> None:
        super().__init__()
        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            f_min=config.f_min,
            f_max=config.f_max,
            power=2.0,
            center=True,
        )

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        if waveforms.dim() != 2:
            raise ValueError(f"expected (B, samples), got {tuple(waveforms.shape)}")
        spectrogram = torch.log(self.mel(waveforms.float()) + self.config.log_offset)
        normalised = (spectrogram - self.config.mean) / self.config.std
        return normalised.unsqueeze(1)


def downmix(samples: npt.ArrayLike) -> FloatArray:
    """(frames,) or (frames, channels) -> (frames,) float32 mean over channels."""
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 1:
        return array
    if array.ndim != 2:
        raise ValueError(f"expected (frames,) or (frames, channels), got {array.shape}")
    mono: FloatArray = array.mean(axis=1, dtype=np.float32)
    return mono


@functools.lru_cache(maxsize=32)
def _resampler(orig_freq: int, new_freq: int) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(orig_freq=orig_freq, new_freq=new_freq)


def resample(samples: FloatArray, orig_freq: int, new_freq: int) -> FloatArray:
    """Band-limited resampling of a mono signal (torchaudio's sinc kernel, cached per rate pair)."""
    if orig_freq == new_freq:
        unchanged: FloatArray = np.asarray(samples, dtype=np.float32)
        return unchanged
    with torch.inference_mode():
        tensor = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        resampled: FloatArray = _resampler(orig_freq, new_freq)(tensor).numpy()
    return resampled


MUSICNN_FRONTEND_TYPE = "musicnn_log_mel_v1"


@dataclass(frozen=True)
class MusicnnFrontEndConfig:
    """The musicnn tagger's front-end, from its checkpoint's ``config.json`` and
    ``musicnn.extractor.batch_data``: librosa's mel spectrogram (power 2, centred, reflect-padded
    Hann STFT, Slaney mel scale and area normalisation, 0 Hz to Nyquist), then
    log10(1 + 10000·mel), cut into ``frames``-frame patches."""

    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 96
    frames: int = 187
    compression: float = 10000.0

    def to_dict(self) -> dict[str, Any]:
        return {"type": MUSICNN_FRONTEND_TYPE, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MusicnnFrontEndConfig:
        if data.get("type") != MUSICNN_FRONTEND_TYPE:
            raise ValueError(f"front-end type {data.get('type')!r} is not {MUSICNN_FRONTEND_TYPE}")
        unknown = set(data) - set(cls.__dataclass_fields__) - {"type"}
        if unknown:
            raise ValueError(f"front-end has unknown parameters {sorted(unknown)}")
        return cls(**{key: value for key, value in data.items() if key != "type"})


class MusicnnFrontEnd(nn.Module):
    """(B, samples) mono waveforms at ``input_rate`` -> (B, frames, n_mels) tagger patches.

    Resamples to 16 kHz on the input's device (so a batch of stream windows is converted in one
    call), then the mel spectrogram and the first ``frames`` frames of each window.

    One deliberate difference from the original: musicnn casts the mel spectrogram to float16
    before computing 10000·mel, so any bin above 6.55 (a loud low note) overflows to infinity
    and poisons the patch. This computes in float32 throughout: loud bins stay finite, and
    elsewhere the two differ only by float16's rounding of the mel value (relative 5e-4, under
    2e-4 after the logarithm).
    """

    def __init__(self, config: MusicnnFrontEndConfig, input_rate: int) -> None:
        super().__init__()
        self.config = config
        self.resample = (
            torchaudio.transforms.Resample(orig_freq=input_rate, new_freq=config.sample_rate)
            if input_rate != config.sample_rate
            else nn.Identity()
        )
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            f_min=0.0,
            f_max=config.sample_rate / 2,
            power=2.0,
            center=True,
            pad_mode="reflect",
            norm="slaney",
            mel_scale="slaney",
        )

    def spectrogram(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(B, samples) at 16 kHz -> (B, all frames, n_mels), compressed."""
        mel = self.mel(waveforms.float()).transpose(1, 2)
        return torch.log10(1.0 + self.config.compression * mel)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        if waveforms.dim() != 2:
            raise ValueError(f"expected (B, samples), got {tuple(waveforms.shape)}")
        patches = self.spectrogram(self.resample(waveforms.float()))
        if patches.shape[1] < self.config.frames:
            raise ValueError(
                f"a window gives {patches.shape[1]} frames; the tagger needs {self.config.frames}"
            )
        return patches[:, : self.config.frames]


def build_frontend(spec: Mapping[str, Any], input_rate: int) -> nn.Module:
    """The front-end a manifest entry describes, fed windows at ``input_rate``; ValueError when
    this code cannot reproduce it."""
    kind = spec.get("type")
    if kind == MUSICNN_FRONTEND_TYPE:
        return MusicnnFrontEnd(MusicnnFrontEndConfig.from_dict(spec), input_rate)
    config = FrontEndConfig.from_dict(spec)
    if config.sample_rate != input_rate:
        raise ValueError(f"a log_mel_v1 input at {config.sample_rate} Hz fed at {input_rate} Hz")
    return LogMelFrontEnd(config)
