"""Abstention measured as the server applies it: the rules of ``modelcore.abstention`` run over
each clip's windows in order, so a published refusal rate is the served one.

``min_probability`` is chosen here too: the largest threshold that keeps the music refused (for
any reason) within a budget, on windows and tracks alike, from probabilities of members that
never saw the clips they score; with codec round trips, within the budget in every codec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from modelcore.abstention import ANSWERED, Abstention, Policy, TrackTally, window_abstention

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
THRESHOLD_GRID = tuple(round(0.01 * step, 2) for step in range(0, 96))


@dataclass(frozen=True)
class Judged:
    """Per window and per clip (clips in order of first appearance): verdicts, and each clip's
    track answer (its top class) for precision."""

    windows: npt.NDArray[np.int64]  # Abstention values, one per window
    tracks: npt.NDArray[np.int64]  # Abstention values, one per clip
    track_top: IntArray  # each clip's top class in its track answer


def judge(
    probabilities: FloatArray,
    music: FloatArray,
    levels: FloatArray,
    clip: IntArray,
    policy: Policy,
) -> Judged:
    """Every window's verdict and every clip's final track verdict under ``policy``."""
    windows = np.array(
        [
            window_abstention(policy, float(level), float(m), float(p.max()))
            for p, m, level in zip(probabilities, music, levels, strict=True)
        ],
        dtype=np.int64,
    )
    order = list(dict.fromkeys(clip.tolist()))
    tracks, tops = [], []
    for owner in order:
        tally = TrackTally(probabilities.shape[1], policy)
        for index in np.flatnonzero(clip == owner):
            tally.add(probabilities[index], Abstention(int(windows[index])), float(music[index]))
        answer = tally.answer()
        tracks.append(int(answer.abstention))
        tops.append(int(answer.probabilities.argmax()))
    return Judged(windows, np.array(tracks, dtype=np.int64), np.array(tops, dtype=np.int64))


def rates(verdicts: npt.NDArray[np.int64]) -> dict[str, float]:
    """Share of verdicts per reason, and ``refused``: the share that abstained at all."""
    shares = {reason.reason: float(np.mean(verdicts == reason)) for reason in Abstention}
    shares["refused"] = float(np.mean(verdicts != ANSWERED))
    return shares


def precision_curve(
    probabilities: FloatArray, labels: IntArray, grid: Sequence[float] = THRESHOLD_GRID
) -> list[dict[str, float]]:
    """Per threshold: the share answered and the accuracy of what is answered."""
    tops, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    curve = []
    for threshold in grid:
        kept = tops >= threshold
        answered = float(kept.mean())
        curve.append(
            {
                "min_probability": threshold,
                "answered": answered,
                "precision": float(correct[kept].mean()) if kept.any() else float("nan"),
            }
        )
    return curve


@dataclass(frozen=True)
class Scored:
    """The windows of some music as one codec left them: genre ``probabilities`` (W, C), music
    probabilities, levels and owning clip (W,)."""

    probabilities: FloatArray
    music: FloatArray
    levels: FloatArray
    clip: IntArray

    def judge(self, policy: Policy) -> Judged:
        return judge(self.probabilities, self.music, self.levels, self.clip, policy)


def choose_min_probability(
    probabilities: FloatArray,
    music: FloatArray,
    levels: FloatArray,
    clip: IntArray,
    base: Policy,
    budget: float,
    grid: Sequence[float] = THRESHOLD_GRID,
) -> tuple[float, Mapping[str, float]]:
    """The largest grid threshold whose music windows and tracks refused (any reason) both stay
    within ``budget``; with its window and track refusal rates."""
    scored = {"": Scored(probabilities, music, levels, clip)}
    best, figures = choose_min_probability_across(scored, base, budget, grid)
    return best, {key: figures[key] for key in ("window_refused", "track_refused") if figures}


def choose_min_probability_across(
    scored: Mapping[str, Scored],
    base: Policy,
    budget: float,
    grid: Sequence[float] = THRESHOLD_GRID,
) -> tuple[float, dict[str, Any]]:
    """The largest grid threshold under which every variant's (every codec's) music windows
    and tracks refused (any reason) stay within ``budget``; with the worst refusal rates and
    each variant's."""
    best, figures = 0.0, {}
    for threshold in grid:
        policy = Policy(threshold, base.silence_dbfs, base.music_threshold)
        by_variant: dict[str, dict[str, float]] = {}
        for name, variant in scored.items():
            judged = variant.judge(policy)
            by_variant[name] = {
                "window_refused": rates(judged.windows)["refused"],
                "track_refused": rates(judged.tracks)["refused"],
            }
        worst = {
            key: max(entry[key] for entry in by_variant.values())
            for key in ("window_refused", "track_refused")
        }
        if max(worst.values()) > budget:
            break
        best = threshold
        figures = {**worst, "by_codec": by_variant}
    return best, figures
