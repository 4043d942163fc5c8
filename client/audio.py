"""Decodes audio files for streaming. ``soundfile`` is imported only when a file is decoded, so
``import client`` never needs libsndfile."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

MAX_CHANNELS = 2
"""The contract takes mono or stereo; wider layouts are mixed down to mono here."""


@dataclass(frozen=True)
class DecodedAudio:
    """Interleaved little-endian float32 PCM (``f32le``) and what the stream config needs."""

    pcm: bytes
    sample_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (4 * self.channels * self.sample_rate)


def decode_file(path: str | Path) -> DecodedAudio:
    """Reads any format libsndfile knows (WAV, FLAC, OGG, MP3 ...) at its own sample rate.

    Raises ``ValueError`` when the file cannot be decoded.
    """
    import soundfile

    try:
        samples, sample_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as error:  # soundfile.LibsndfileError is a RuntimeError
        raise ValueError(f"cannot decode {path}: {error}") from error
    frames: npt.NDArray[np.float32] = np.asarray(samples, dtype=np.float32)
    if frames.shape[1] > MAX_CHANNELS:
        frames = frames.mean(axis=1, keepdims=True, dtype=np.float32)
    pcm = np.ascontiguousarray(frames, dtype="<f4").tobytes()
    return DecodedAudio(pcm=pcm, sample_rate=int(sample_rate), channels=int(frames.shape[1]))
