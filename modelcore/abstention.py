"""When not to answer: silence, non-music and doubt, for windows, tracks and feature rows.

A caller wired into a live pipeline is fed silence between songs, talk and noise; a genre for
those is worse than no genre. Scores are always returned; the abstention says whether to trust
them. The order of the checks is the order of the causes: a silent window is not judged for
music, and only music is judged for doubt.

The track answer follows its audio: it abstains (SILENCE or NOT_MUSIC, whichever covered more
windows) when most windows did, and otherwise averages only the music windows, so a song after
five seconds of silence is answered from the song.

These rules live in the model core because the server applies them and the trainer measures
them (``training.abstention``): one definition, so the published error rates are the served
ones.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
FLOOR_DBFS = -200.0  # the level of digital silence, so the log of zero stays finite


class Abstention(enum.IntEnum):
    """The values of ``genre.v1.Abstention`` (a test holds them equal)."""

    ANSWERED = 0
    SILENCE = 1
    NOT_MUSIC = 2
    UNCERTAIN = 3

    @property
    def reason(self) -> str:
        """Lower-case name: metrics labels, log fields, the v2 ``ABSTENTION`` output."""
        return self.name.lower()


ANSWERED, SILENCE, NOT_MUSIC, UNCERTAIN = Abstention


@dataclass(frozen=True)
class Policy:
    """What one call abstains on: ``min_probability`` (0: never UNCERTAIN),
    ``silence_dbfs`` (-inf: never SILENCE) and ``music_threshold`` (used only with a detector)."""

    min_probability: float
    silence_dbfs: float = -math.inf
    music_threshold: float = 0.5


def level_dbfs(samples: FloatArray) -> float:
    """RMS level of full-scale-normalised samples in dB (a full-scale sine is -3 dBFS)."""
    if samples.size == 0:
        return FLOOR_DBFS
    rms = math.sqrt(float(np.dot(samples, samples)) / samples.size)
    return max(FLOOR_DBFS, 20.0 * math.log10(rms)) if rms > 0 else FLOOR_DBFS


def row_abstentions(probabilities: FloatArray, min_probability: float) -> list[Abstention]:
    """Features rows: UNCERTAIN where the top probability is under the threshold."""
    if min_probability <= 0:
        return [ANSWERED] * len(probabilities)
    tops = probabilities.max(axis=1)
    return [UNCERTAIN if top < min_probability else ANSWERED for top in tops.tolist()]


def window_abstention(
    policy: Policy, level: float, music_probability: float, top_probability: float
) -> Abstention:
    """One window's verdict; ``music_probability`` is NaN for a model without a detector."""
    if level < policy.silence_dbfs:
        return SILENCE
    if not math.isnan(music_probability) and music_probability < policy.music_threshold:
        return NOT_MUSIC
    if top_probability < policy.min_probability:
        return UNCERTAIN
    return ANSWERED


@dataclass(frozen=True)
class Verdict:
    """One window's scores, whether to trust them, and its music probability (NaN: unknown)."""

    scores: FloatArray
    abstention: Abstention
    music_probability: float


@dataclass(frozen=True)
class TrackAnswer:
    probabilities: FloatArray
    abstention: Abstention
    music_probability: float  # NaN: the model cannot say


class TrackTally:
    """The running track answer of one stream: window probabilities summed by kind of window."""

    def __init__(self, classes: int, policy: Policy) -> None:
        self._policy = policy
        self._all = np.zeros(classes, dtype=np.float64)
        self._music = np.zeros(classes, dtype=np.float64)
        self._counts = dict.fromkeys(Abstention, 0)
        self._music_probability_sum = 0.0
        self._heard = 0  # windows not silent, whose music probabilities the track averages

    @property
    def windows(self) -> int:
        return sum(self._counts.values())

    def add(
        self, probabilities: FloatArray, abstention: Abstention, music_probability: float
    ) -> None:
        self._counts[abstention] += 1
        self._all += probabilities
        if abstention in (ANSWERED, UNCERTAIN):
            self._music += probabilities
        if abstention != SILENCE and not math.isnan(music_probability):
            self._music_probability_sum += music_probability
            self._heard += 1

    def answer(self) -> TrackAnswer:
        music_windows = self._counts[ANSWERED] + self._counts[UNCERTAIN]
        total = max(self.windows, 1)
        heard = self._music_probability_sum / self._heard if self._heard else math.nan
        if 2 * music_windows >= total and music_windows:
            probabilities = (self._music / music_windows).astype(np.float32)
            doubt = float(probabilities.max()) < self._policy.min_probability
            return TrackAnswer(probabilities, UNCERTAIN if doubt else ANSWERED, heard)
        probabilities = (self._all / total).astype(np.float32)
        silent, talk = self._counts[SILENCE], self._counts[NOT_MUSIC]
        return TrackAnswer(probabilities, SILENCE if silent > talk else NOT_MUSIC, heard)
