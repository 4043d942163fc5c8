"""The genre head on the tagger's features: a multinomial logistic regression per window.

254 tracks (about 4,800 windows, but windows of one track are far from independent) support a
linear model and little more; the regularisation strength is chosen on validation tracks with
the rest of the ensemble (``training.tagger.fusion``). A genre with no training window gets a
zero row and a bias far below the others: the head never names it, and the other member can.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from sklearn.linear_model import LogisticRegression

from modelcore.models.audio_ensemble import TaggerHead

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
C_GRID = (0.01, 0.1)  # inverse L2 strength on standardised features
ABSENT_MARGIN = 5.0  # logits below the lowest trained bias for a genre never seen


def fit_head(features: FloatArray, labels: IntArray, num_classes: int, c: float) -> TaggerHead:
    """A ``TaggerHead`` fitted on per-window ``features`` (W, 250) and their track's labels."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit((features - mean) / scale, labels)
    head = TaggerHead(features.shape[1], num_classes)
    weight = np.zeros((num_classes, features.shape[1]), dtype=np.float32)
    bias = np.full(num_classes, model.intercept_.min() - ABSENT_MARGIN, dtype=np.float32)
    weight[model.classes_] = model.coef_
    bias[model.classes_] = model.intercept_
    with torch.no_grad():
        head.mean.copy_(torch.from_numpy(mean))
        head.scale.copy_(torch.from_numpy(scale))
        head.linear.weight.copy_(torch.from_numpy(weight))
        head.linear.bias.copy_(torch.from_numpy(bias))
    return head.eval()


def head_log_probabilities(head: TaggerHead, features: FloatArray) -> FloatArray:
    """(W, 250) -> (W, C) log-probabilities."""
    with torch.inference_mode():
        logits = head(torch.from_numpy(features))
        result: FloatArray = torch.log_softmax(logits, dim=1).numpy()
    return result
