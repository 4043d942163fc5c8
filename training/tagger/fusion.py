"""Choosing how the members vote, on validation tracks, and scoring that choice honestly.

Fused window logits are ``w·log p_cnn + (1-w)·log p_head - λ·log prior``: ``w`` weighs the
members, ``λ`` takes back part of the class prior the members learnt from lopsided training
audio (0: keep it, 1: assume every genre equally likely). With the head's regularisation ``c``,
those are the choices. The grid is coarse on purpose: 94 valid tracks (47 per nested half)
cannot choose among more (a finer grid of 132 points chose weights of 0.4 and 0.8 on the two
halves, and scored no better on the other half than this one). A
track's answer is the mean of its windows' probabilities, as the server aggregates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.evaluate import log_loss

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
WEIGHT_GRID = (0.25, 0.5, 0.75)
PRIOR_GRID = (0.0, 0.5, 1.0)


@dataclass(frozen=True)
class Fusion:
    """One choice: the head's ``c``, the CNN-LSTM's weight ``w`` and the prior strength ``λ``."""

    c: float
    cnn_weight: float
    prior_strength: float


@dataclass(frozen=True)
class MemberWindows:
    """Each member's window log-probabilities on some tracks, with which track owns a window.

    ``head`` has one entry per candidate ``c``; ``window_track`` indexes ``track_labels``."""

    cnn: FloatArray
    head: Mapping[float, FloatArray]
    window_track: IntArray
    track_labels: IntArray

    def fused(self, fusion: Fusion, log_prior: FloatArray) -> FloatArray:
        w = fusion.cnn_weight
        logits = w * self.cnn + (1 - w) * self.head[fusion.c] - fusion.prior_strength * log_prior
        result: FloatArray = logits.astype(np.float32)
        return result


def softmax(logits: FloatArray, temperature: float = 1.0) -> FloatArray:
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exponentials = np.exp(scaled)
    result: FloatArray = (exponentials / exponentials.sum(axis=1, keepdims=True)).astype(np.float32)
    return result


def track_means(probabilities: FloatArray, window_track: IntArray, tracks: int) -> FloatArray:
    """(W, C) -> (tracks, C): the mean of each track's window probabilities."""
    sums = np.zeros((tracks, probabilities.shape[1]))
    np.add.at(sums, window_track, probabilities)
    counts = np.bincount(window_track, minlength=tracks).clip(min=1)
    result: FloatArray = (sums / counts[:, None]).astype(np.float32)
    return result


def track_figures(
    logits: FloatArray, windows: MemberWindows, tracks: Sequence[int], temperature: float = 1.0
) -> tuple[float, float]:
    """Track accuracy and log-loss over the chosen ``tracks`` (indices into track_labels)."""
    means = track_means(
        softmax(logits, temperature), windows.window_track, len(windows.track_labels)
    )
    chosen = np.asarray(tracks, dtype=np.int64)
    labels = windows.track_labels[chosen]
    accuracy = float((means[chosen].argmax(axis=1) == labels).mean())
    return accuracy, log_loss(means[chosen], labels)


def choose_fusion(windows: MemberWindows, tracks: Sequence[int], log_prior: FloatArray) -> Fusion:
    """The grid point with the best track accuracy on ``tracks``; ties go to lower log-loss,
    then to the simpler choice (earlier in the grid)."""
    best: tuple[float, float] | None = None
    chosen = Fusion(min(windows.head), 0.0, 0.0)
    for c in sorted(windows.head):
        for weight in WEIGHT_GRID:
            for strength in PRIOR_GRID:
                fusion = Fusion(c, weight, strength)
                accuracy, loss = track_figures(windows.fused(fusion, log_prior), windows, tracks)
                key = (accuracy, -loss)
                if best is None or key > best:
                    best, chosen = key, fusion
    return chosen


def fit_track_temperature(
    logits: FloatArray, windows: MemberWindows, tracks: Sequence[int]
) -> float:
    """The temperature minimising track log-loss on ``tracks`` (a 1-D search in log space)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 121))
    losses = [track_figures(logits, windows, tracks, float(t))[1] for t in grid]
    return float(grid[int(np.argmin(losses))])


def log_prior_of(labels: IntArray, num_classes: int) -> FloatArray:
    """log of the tracks' genre shares; a genre with none counts half a track."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    counts[counts == 0] = 0.5
    result: FloatArray = np.log(counts / counts.sum()).astype(np.float32)
    return result
