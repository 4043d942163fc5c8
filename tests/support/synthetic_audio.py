"""Synthetic audio with genre-like structure, so audio tests run anywhere without real data.

Three styles that a log-mel model can tell apart, as genres differ: ``classical`` (sustained
harmonic tones with slow swells, no percussion), ``disco`` (four-on-the-floor kicks and off-beat
hi-hats at 120 bpm over a bass tone) and ``metal`` (clipped, noise-rich chords with fast double
kicks). Every clip is deterministic given its seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
STYLES = ("classical", "disco", "metal")


def _time(seconds: float, sample_rate: int) -> FloatArray:
    times: FloatArray = np.arange(round(seconds * sample_rate), dtype=np.float32) / np.float32(
        sample_rate
    )
    return times


def _hits(t: FloatArray, period: float, offset: float, decay: float) -> FloatArray:
    phase = np.mod(t - offset, period)
    hits: FloatArray = np.exp(-phase / decay).astype(np.float32)
    return hits


def synth_clip(style: str, seconds: float, sample_rate: int = 22050, seed: int = 0) -> FloatArray:
    """A mono float32 clip in [-1, 1] of the given style."""
    rng = np.random.default_rng(seed)
    t = _time(seconds, sample_rate)
    if style == "classical":
        root = rng.uniform(196.0, 330.0)
        swell = 0.6 + 0.4 * np.sin(2 * np.pi * t / rng.uniform(2.0, 4.0))
        tone = sum(
            np.sin(2 * np.pi * root * ratio * (k + 1) * t) / (k + 1) ** 1.5
            for ratio in (1.0, 1.25, 1.5)
            for k in range(4)
        )
        signal = 0.15 * swell * tone
    elif style == "disco":
        beat = 60.0 / rng.uniform(116.0, 124.0)
        kick = _hits(t, beat, 0.0, 0.05) * np.sin(2 * np.pi * 60.0 * t)
        hats = _hits(t, beat, beat / 2, 0.01) * rng.standard_normal(t.shape).astype(np.float32)
        bass = 0.3 * np.sin(2 * np.pi * rng.uniform(80.0, 110.0) * t)
        signal = 0.6 * kick + 0.25 * hats + bass
    elif style == "metal":
        beat = 60.0 / rng.uniform(170.0, 200.0)
        root = rng.uniform(82.0, 110.0)
        chord = sum(np.sin(2 * np.pi * root * ratio * t) for ratio in (1.0, 1.5, 2.0))
        distorted = np.tanh(4.0 * chord)
        kicks = _hits(t, beat / 2, 0.0, 0.03) * rng.standard_normal(t.shape).astype(np.float32)
        signal = 0.35 * distorted + 0.3 * kicks
    else:
        raise ValueError(f"unknown style {style!r}; known: {STYLES}")
    noise = 0.01 * rng.standard_normal(t.shape)
    clip: FloatArray = np.clip(signal + noise, -1.0, 1.0).astype(np.float32)
    return clip


def write_clip(path: Path, samples: FloatArray, sample_rate: int) -> Path:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), samples, sample_rate, subtype="PCM_16")
    return path


def write_dataset(
    root: Path, per_style: int = 4, seconds: float = 8.0, sample_rate: int = 22050
) -> Path:
    """``root/<style>/<style>.000NN.wav`` in the GTZAN folder layout."""
    for style_index, style in enumerate(STYLES):
        for number in range(per_style):
            clip = synth_clip(style, seconds, sample_rate, seed=1000 * style_index + number)
            write_clip(root / style / f"{style}.{number:05d}.wav", clip, sample_rate)
    return root


def pcm_s16le(samples: FloatArray) -> bytes:
    """Float samples as the wire's 16-bit little-endian PCM."""
    scaled = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    return scaled.tobytes()
