"""Audio that is not music, made here: speech read by espeak-ng and flite (``voices``), noise of
several colours, mains hum over near-silence, test tones, and near-silence itself.

A music detector is only as good as the non-music it has seen, and none of the shared data is
speech or noise. Everything here is generated from a seed and a voice list, so the trainer, the
tests and the README's error rates all name exactly which sounds they used; the sets of voices
(``VOICES``) are disjoint, so the valid and test figures are for voices the detector never heard.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.abstention.voices import SAMPLE_RATE, VOICES, Delivery, speak

FloatArray = npt.NDArray[np.float32]

SENTENCES = (
    "The central bank held interest rates steady on Tuesday, citing slower consumer spending.",
    "Traffic is heavy on the northbound bridge this morning, so allow an extra twenty minutes.",
    "Welcome back to the show. Today we are talking about the history of the city's railways.",
    "Buy one, get one free on all garden furniture this weekend only, while stocks last.",
    "Scientists say the new telescope will map the early universe in unprecedented detail.",
    "Showers will clear by the afternoon, with highs of eighteen degrees and a light breeze.",
    "Our next caller has a question about renewing a passport before the summer holidays.",
    "The council meeting was adjourned after a long debate about parking in the town centre.",
    "In sport, the home side came back from two goals down to win in the final minute.",
    "Remember to check your smoke alarms when the clocks change at the end of the month.",
    "Shares in the technology sector fell sharply after the quarterly earnings were released.",
    "This episode is brought to you by a meal kit that delivers fresh ingredients each week.",
    "The museum opens a new exhibition of photographs from the nineteen sixties next Friday.",
    "Police are asking witnesses to come forward after a collision on the ring road last night.",
    "And now, the headlines at the top of the hour, read by our news team in the studio.",
    "Experts recommend at least seven hours of sleep for most adults to stay healthy.",
)
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0, "blue": -1.0, "violet": -2.0}
"""Power spectrum exponent: power falls as 1 / f ** exponent."""


@dataclass(frozen=True)
class Clip:
    """One non-music clip: ``kind`` (speech, noise, hum, tone, silence), a ``name`` saying how it
    was made, and mono float32 samples at ``SAMPLE_RATE``."""

    kind: str
    name: str
    samples: FloatArray


def at_level(samples: FloatArray, dbfs: float) -> FloatArray:
    """``samples`` scaled to an RMS level of ``dbfs`` (full scale: 0 dBFS)."""
    rms = math.sqrt(float(np.mean(np.square(samples, dtype=np.float64)))) or 1.0
    scaled = samples * (10 ** (dbfs / 20) / rms)
    clipped: FloatArray = np.clip(scaled, -1.0, 1.0).astype(np.float32)
    return clipped


def coloured_noise(colour: str, seconds: float, rng: np.random.Generator) -> FloatArray:
    """Gaussian noise shaped in frequency so its power falls as 1 / f ** exponent."""
    count = round(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.standard_normal(count))
    frequencies = np.fft.rfftfreq(count, 1 / SAMPLE_RATE)
    frequencies[0] = frequencies[1]
    spectrum *= frequencies ** (-NOISE_COLOURS[colour] / 2)
    return at_level(np.fft.irfft(spectrum, count).astype(np.float32), -20.0)


def speech_clip(
    voice: str, seconds: float, rng: np.random.Generator, sentences: Sequence[str] = SENTENCES
) -> Clip:
    """Sentences in one voice at a random speed, pitch and formant shift (``Delivery.draw``),
    with pauses, over a faint room noise, until ``seconds`` are filled."""
    delivery = Delivery.draw(rng)
    parts: list[FloatArray] = []
    filled = 0
    while filled < seconds * SAMPLE_RATE:
        spoken = speak(sentences[int(rng.integers(len(sentences)))], voice, delivery)
        pause = np.zeros(int(rng.uniform(0.15, 0.6) * SAMPLE_RATE), dtype=np.float32)
        parts += [spoken, pause]
        filled += spoken.size + pause.size
    speech = np.concatenate(parts)[: round(seconds * SAMPLE_RATE)]
    level = float(rng.uniform(-32, -14))
    room = at_level(coloured_noise("pink", seconds, rng), level - 45)
    samples = at_level(speech, level) + room[: speech.size]
    return Clip("speech", f"{voice} {delivery.description} at {level:.0f} dBFS", samples)


def noise_clip(colour: str, seconds: float, rng: np.random.Generator) -> Clip:
    level = float(rng.uniform(-40, -8))
    samples = at_level(coloured_noise(colour, seconds, rng), level)
    return Clip("noise", f"{colour} noise at {level:.0f} dBFS", samples)


def hum_clip(seconds: float, rng: np.random.Generator) -> Clip:
    """Mains hum (50 or 60 Hz and its harmonics) over near-silence: what an idle line carries."""
    mains = float(rng.choice([50.0, 60.0]))
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    weights = rng.uniform(0.1, 1.0, 5) / np.arange(1, 6)
    hum = sum(w * np.sin(2 * np.pi * mains * k * t) for k, w in enumerate(weights, start=1))
    level = float(rng.uniform(-55, -30))
    floor = at_level(coloured_noise("white", seconds, rng), level - 20)
    samples = at_level(np.asarray(hum, dtype=np.float32), level) + floor
    return Clip("hum", f"{mains:.0f} Hz hum at {level:.0f} dBFS", samples.astype(np.float32))


def tone_clip(seconds: float, rng: np.random.Generator) -> Clip:
    """A test tone: steady, beeping on and off, or sweeping, at one level."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    shape = str(rng.choice(["steady", "beeps", "sweep"]))
    frequency = float(rng.uniform(200, 3000))
    if shape == "sweep":
        phase = 2 * np.pi * (frequency * t + (4 * frequency - frequency) * t**2 / (2 * seconds))
        tone = np.sin(phase)
    else:
        tone = np.sin(2 * np.pi * frequency * t)
        if shape == "beeps":
            tone *= (t % 1.0) < 0.5
    level = float(rng.uniform(-30, -10))
    samples = at_level(tone.astype(np.float32), level)
    return Clip("tone", f"{shape} tone {frequency:.0f} Hz at {level:.0f} dBFS", samples)


def silence_clip(seconds: float, rng: np.random.Generator) -> Clip:
    """Digital silence or a noise floor far below any programme material."""
    level = float(rng.uniform(-95, -65))
    samples = at_level(coloured_noise("pink", seconds, rng), level)
    return Clip("silence", f"noise floor at {level:.0f} dBFS", samples)


def non_music(
    split: str, seconds: float = 12.0, per_voice: int = 4, per_kind: int = 12, seed: int = 0
) -> Iterator[Clip]:
    """The split's non-music: ``per_voice`` speech clips per voice of ``VOICES[split]``,
    ``per_kind`` clips of each noise colour, hum, tones and near-silence."""
    rng = np.random.default_rng([seed, sorted(VOICES).index(split)])
    for voice in VOICES[split]:
        for _ in range(per_voice):
            yield speech_clip(voice, seconds, rng)
    for colour in NOISE_COLOURS:
        for _ in range(per_kind):
            yield noise_clip(colour, seconds, rng)
    for _ in range(per_kind):
        yield hum_clip(seconds, rng)
        yield tone_clip(seconds, rng)
        yield silence_clip(seconds, rng)
