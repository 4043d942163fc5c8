"""The made non-music, the detector fit and the threshold choice of ``genre-train abstention``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from modelcore.abstention import Policy, level_dbfs
from training.abstention.detector import fit_detector, music_probabilities
from training.abstention.evaluation import choose_min_probability, judge, rates
from training.abstention.sounds import at_level, coloured_noise, non_music, speech_clip
from training.abstention.voices import SAMPLE_RATE, VOICES, espeak_available, missing_synthesizers


def test_no_voice_is_in_two_sets() -> None:
    for first, second in itertools.combinations(VOICES, 2):
        assert not set(VOICES[first]) & set(VOICES[second]), (first, second)


def band_power(samples: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    frequencies = np.fft.rfftfreq(samples.size, 1 / SAMPLE_RATE)
    return float(spectrum[(frequencies >= low) & (frequencies < high)].sum())


def test_noise_colours_tilt_as_named() -> None:
    rng = np.random.default_rng(0)
    tilt = {
        colour: band_power(noise, 50, 200) / band_power(noise, 5000, 5150)
        for colour in ("violet", "blue", "white", "pink", "brown")
        for noise in [coloured_noise(colour, 4.0, rng)]
    }
    assert list(tilt.values()) == sorted(tilt.values())  # ever more power low down
    assert 0.5 < tilt["white"] < 2.0


def test_levels_are_what_was_asked() -> None:
    noise = at_level(coloured_noise("white", 2.0, np.random.default_rng(1)), -30.0)
    assert level_dbfs(noise) == pytest.approx(-30.0, abs=0.1)


def test_speech_is_made_by_espeak_in_the_voice_asked() -> None:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed; it makes the speech")
    clip = speech_clip(VOICES["test"][0], 5.0, np.random.default_rng(0))
    assert clip.kind == "speech"
    assert clip.name.startswith(VOICES["test"][0])
    assert clip.samples.shape == (5 * SAMPLE_RATE,)
    assert -35 < level_dbfs(clip.samples) < -10


def test_every_kind_of_non_music_is_made() -> None:
    missing = missing_synthesizers(VOICES["valid"])
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed; they make the speech")
    clips = list(non_music("valid", seconds=3.0, per_voice=1, per_kind=1))
    assert {clip.kind for clip in clips} == {"speech", "noise", "hum", "tone", "silence"}
    assert sum(clip.kind == "speech" for clip in clips) == len(VOICES["valid"])
    again = list(non_music("valid", seconds=3.0, per_voice=1, per_kind=1))
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(clips, again, strict=True))


def test_the_detector_learns_a_separable_rule_and_serves_it() -> None:
    rng = np.random.default_rng(0)
    music = rng.normal(1.0, 1.0, (200, 6)).astype(np.float32)
    other = rng.normal(-1.0, 1.0, (200, 6)).astype(np.float32)
    descriptors = np.concatenate([music, other])
    is_music = np.r_[np.ones(200), np.zeros(200)].astype(np.int64)
    groups = np.arange(400) // 10  # ten windows per clip
    fitted = fit_detector(descriptors, is_music, groups, grid=(0.1, 1.0))
    assert fitted.c in (0.1, 1.0)
    probability = music_probabilities(fitted.detector, descriptors)
    assert ((probability >= 0.5) == is_music).mean() > 0.9
    with torch.inference_mode():  # the module the server runs gives the same numbers
        direct = torch.sigmoid(fitted.detector(torch.from_numpy(descriptors))).numpy()
    np.testing.assert_allclose(direct, probability, atol=1e-6)


def test_the_threshold_is_the_largest_within_the_refusal_budget() -> None:
    # ten clips of ten windows; window tops spread from 0.30 to 0.99
    tops = np.linspace(0.30, 0.99, 100).astype(np.float32)
    probabilities = np.stack([tops, 1 - tops], axis=1).astype(np.float32)
    music = np.full(100, 0.9, dtype=np.float32)
    levels = np.full(100, -20.0, dtype=np.float32)
    clip = np.repeat(np.arange(10), 10)
    chosen, figures = choose_min_probability(
        probabilities, music, levels, clip, Policy(0.0, -60.0, 0.5), budget=0.05
    )
    judged = judge(probabilities, music, levels, clip, Policy(chosen, -60.0, 0.5))
    assert rates(judged.windows)["refused"] <= 0.05
    assert figures["window_refused"] == rates(judged.windows)["refused"]
    one_more = judge(probabilities, music, levels, clip, Policy(chosen + 0.01, -60.0, 0.5))
    assert max(rates(one_more.windows)["refused"], rates(one_more.tracks)["refused"]) > 0.05
