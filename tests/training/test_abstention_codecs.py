"""The codec round trips the detector trains and is measured on, the wider voices, the table
cache, and the threshold chosen over every codec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelcore.abstention import Policy
from training.abstention.cache import ArrayCache, digest
from training.abstention.codecs import (
    STUDY_CODECS,
    TRAINING_CODECS,
    Codec,
    drawn,
    round_trip,
)
from training.abstention.evaluation import Scored, choose_min_probability_across, rates
from training.abstention.voices import (
    SAMPLE_RATE,
    VOICES,
    Delivery,
    missing_synthesizers,
    speak,
)

RATE = 22050


def programme(seconds: float = 2.0) -> np.ndarray:
    """A chord under a little noise: something every codec must keep close."""
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * RATE)) / RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 1760.0))
    return (0.1 * chord + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("codec", STUDY_CODECS, ids=lambda codec: codec.label)
def test_each_round_trip_keeps_length_alignment_and_spends_its_bitrate(codec: Codec) -> None:
    clip = programme()
    trip = round_trip(clip, RATE, codec)
    assert trip.samples.shape == clip.shape
    assert trip.samples.dtype == np.float32
    # aligned: the codec's priming is gone, so the copy matches at lag 0, not a frame later
    middle = slice(RATE // 2, RATE)
    error = np.sqrt(np.mean((trip.samples[middle] - clip[middle]) ** 2))
    assert error < 0.25 * np.sqrt(np.mean(clip[middle] ** 2)), codec.label
    assert 0.3 * codec.bitrate < trip.bits_per_second < 1.5 * codec.bitrate, codec.label
    assert not np.array_equal(trip.samples, clip)  # lossy: the codec did something


def test_settings_are_checked_and_opus_takes_its_own_rates() -> None:
    with pytest.raises(ValueError, match="unknown codec"):
        Codec("flac", 128000)
    with pytest.raises(ValueError, match="vorbis bitrates"):
        Codec("vorbis", 100000)
    assert Codec("opus", 32000).encoding_rate(22050) == 24000
    assert Codec("opus", 32000).encoding_rate(16000) == 16000
    assert Codec("mp3", 64000).encoding_rate(22050) == 22050
    assert Codec("vorbis", 128000, 44100).label == "vorbis q4 at 44.1 kHz"


def test_training_codecs_are_drawn_evenly_and_reproducibly() -> None:
    first = drawn(400, np.random.default_rng(3))
    assert first == drawn(400, np.random.default_rng(3))
    names = [codec.name for codec in first]
    assert {name: names.count(name) > 50 for name in ("mp3", "aac", "opus", "vorbis")}
    assert not set(STUDY_CODECS) & set(TRAINING_CODECS)  # trained around, measured at


def test_the_female_flite_voice_is_heard_only_in_the_test_set() -> None:
    assert "flite:slt" in VOICES["test"]
    assert all("slt" not in voice for part in ("train", "valid") for voice in VOICES[part])
    assert all(any(v.startswith("flite:") for v in VOICES[part]) for part in VOICES)


def test_deliveries_span_pitch_formants_and_rate() -> None:
    drawn_ = [Delivery.draw(np.random.default_rng(seed)) for seed in range(200)]
    speeds, pitches = [d.speed for d in drawn_], [d.pitch for d in drawn_]
    formants = [d.formant for d in drawn_]
    assert min(speeds) < 110
    assert max(speeds) > 280
    assert min(pitches) < 10
    assert max(pitches) > 90
    assert min(formants) < 0.86
    assert max(formants) > 1.2


@pytest.mark.parametrize("voice", ["en-us+m1", "flite:kal16"])
def test_a_faster_tape_shortens_speech_and_raises_it(voice: str) -> None:
    missing = missing_synthesizers((voice,))
    if missing:
        pytest.skip(f"{', '.join(missing)} is not installed; it makes the speech")
    text = "Traffic is heavy on the northbound bridge this morning."
    plain = speak(text, voice, Delivery(160, 50, 1.0))
    fast = speak(text, voice, Delivery(160, 50, 1.25))
    assert len(fast) == pytest.approx(len(plain) / 1.25, rel=0.03)

    def centroid(samples: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(samples))
        return float(
            (spectrum * np.fft.rfftfreq(samples.size, 1 / SAMPLE_RATE)).sum() / spectrum.sum()
        )

    assert centroid(fast) > 1.1 * centroid(plain)  # formants moved up with the tape


def test_the_cache_returns_what_was_stored_and_misses_on_any_change(tmp_path: Path) -> None:
    calls: list[int] = []

    def compute() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"x": np.arange(4, dtype=np.float32), "n": np.array([7])}

    cache = ArrayCache(tmp_path)
    key = digest(["model", np.zeros(3, np.float32)])
    first = cache.cached("tables", key, compute)
    again = cache.cached("tables", key, compute)
    assert len(calls) == 1
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert digest(["model", np.zeros(3, np.float64)]) != key  # dtype is part of the key
    assert digest(["model", np.ones(3, np.float32)]) != key
    assert not list(tmp_path.rglob("*.partial"))
    ArrayCache(None).cached("tables", key, compute)
    assert len(calls) == 2  # no directory: nothing kept


def test_the_threshold_holds_the_budget_in_the_worst_codec() -> None:
    tops = np.linspace(0.40, 0.99, 100).astype(np.float32)
    rest = (1 - tops) / 2
    clean = np.stack([tops, rest, rest], axis=1).astype(np.float32)
    worse = np.stack([tops - 0.05, rest + 0.025, rest + 0.025], axis=1).astype(np.float32)
    music, levels = np.full(100, 0.9, np.float32), np.full(100, -20.0, np.float32)
    clip = np.repeat(np.arange(10), 10)
    scored = {
        "uncoded": Scored(clean, music, levels, clip),
        "mp3": Scored(worse, music, levels, clip),
    }
    chosen, figures = choose_min_probability_across(scored, Policy(0.0, -60.0, 0.5), 0.05)
    policy = Policy(chosen, -60.0, 0.5)
    worst = max(rates(s.judge(policy).windows)["refused"] for s in scored.values())
    assert worst <= 0.05
    assert figures["window_refused"] == worst
    assert figures["by_codec"]["mp3"]["window_refused"] == worst  # the codec set the threshold
    alone, _ = choose_min_probability_across({"uncoded": scored["uncoded"]}, policy, 0.05)
    assert alone > chosen
