"""The music detector: a logistic regression on the ensemble's window descriptors.

Linear is enough: on the valid voices and noises it separates music from the made non-music
with room to spare (``training/README.md``), and it costs one dot product per window when
serving. Its regularisation is chosen by cross-validation grouped by clip (a track's windows
never on both sides); classes are weighted to balance, so the 0.5 threshold treats a lost song
and a missed advert alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedGroupKFold

from modelcore.models.audio_ensemble import MusicDetector

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
C_GRID = (0.01, 0.1, 1.0)
FOLDS = 5


@dataclass(frozen=True)
class FittedDetector:
    detector: MusicDetector
    c: float
    cv_log_loss: dict[float, float]  # by C: grouped out-of-fold log-loss on the train windows


def _fit(descriptors: FloatArray, is_music: IntArray, c: float) -> LogisticRegression:
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    return model.fit(descriptors, is_music)


def fit_detector(
    descriptors: FloatArray, is_music: IntArray, groups: IntArray, grid: Sequence[float] = C_GRID
) -> FittedDetector:
    """Standardises the (W, D) ``descriptors``, chooses C by grouped cross-validation, refits."""
    mean = descriptors.mean(axis=0)
    scale = descriptors.std(axis=0) + 1e-6
    standard = (descriptors - mean) / scale
    # every fold needs both kinds: no more folds than clips of the rarer kind
    folds = min(FOLDS, *(len(np.unique(groups[is_music == kind])) for kind in (0, 1)))
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=0)
    losses = {}
    for c in grid:
        out_of_fold = np.zeros(len(standard))
        for train, held in splitter.split(standard, is_music, groups):
            out_of_fold[held] = _fit(standard[train], is_music[train], c).predict_proba(
                standard[held]
            )[:, 1]
        losses[c] = float(log_loss(is_music, np.clip(out_of_fold, 1e-6, 1 - 1e-6)))
    chosen = min(losses, key=lambda c: losses[c])
    model = _fit(standard, is_music, chosen)
    detector = MusicDetector(descriptors.shape[1])
    with torch.no_grad():
        detector.mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        detector.scale.copy_(torch.from_numpy(scale.astype(np.float32)))
        detector.linear.weight.copy_(torch.from_numpy(model.coef_.astype(np.float32)))
        detector.linear.bias.copy_(torch.from_numpy(model.intercept_.astype(np.float32)))
    return FittedDetector(detector.eval(), chosen, losses)


def music_probabilities(detector: MusicDetector, descriptors: FloatArray) -> FloatArray:
    """(W, D) -> (W,) probability that each window is music, as the server computes it."""
    with torch.inference_mode():
        result: FloatArray = torch.sigmoid(detector(torch.from_numpy(descriptors))).numpy()
    return result
