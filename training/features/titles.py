"""Fits the title member (``modelcore.models.title.TitleNgrams``) on training titles.

The vocabulary is every character n-gram key (from the module's own ``ngram_keys``, so
training and serving hash alike) found in at least ``min_count`` training titles; ``idf`` is
scikit-learn's smoothed inverse document frequency. The class scores are a multinomial logistic
regression (L-BFGS, L2 strength ``1 / c``) on the module's own TF-IDF bags, copied into its
``EmbeddingBag``: the served module computes the regression's decision function exactly (in
float32). Titles are code points (``modelcore.preprocessing.TextFeature``); a row without a
title is not a training row of this member.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from modelcore.models.title import TitleNgrams, ngram_keys
from modelcore.preprocessing import TextFeature
from training.features.config import TitleConfig
from training.features.train import FloatArray, IntArray

CHUNK = 2048  # titles hashed per step (bounds the (rows, n-grams) key matrices)


def title_codes(titles: Sequence[str], max_length: int) -> FloatArray:
    """(N, max_length) code points of ``titles`` ("" for none), as the server sends them."""
    feature = TextFeature("title", max_length)
    return np.stack([feature.encode(title) for title in titles]).astype(np.float32)


def _keys(codes: FloatArray, sizes: Sequence[int]) -> list[npt.NDArray[np.int64]]:
    """Each title's distinct n-gram keys."""
    result: list[npt.NDArray[np.int64]] = []
    for start in range(0, len(codes), CHUNK):
        keys = ngram_keys(torch.from_numpy(codes[start : start + CHUNK]), sizes).numpy()
        result.extend(np.unique(row[row >= 0]) for row in keys)
    return result


def _bags(module: TitleNgrams, codes: FloatArray) -> sparse.csr_matrix:
    """The module's TF-IDF bags as a sparse (N, vocabulary) matrix."""
    rows, columns, values = [], [], []
    with torch.inference_mode():
        for start in range(0, len(codes), CHUNK):
            ids, weights = module.bag(torch.from_numpy(codes[start : start + CHUNK]))
            present = ids < module.vocabulary_size
            row, slot = np.nonzero(present.numpy())
            rows.append(row + start)
            columns.append(ids.numpy()[row, slot])
            values.append(weights.numpy()[row, slot].astype(np.float64))
    shape = (len(codes), module.vocabulary_size)
    return sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))), shape=shape
    )


def fit_title_member(
    titles: Sequence[str], labels: IntArray, num_classes: int, config: TitleConfig
) -> TitleNgrams:
    """The title member fitted on non-empty ``titles`` and their ``labels``."""
    chosen = [index for index, title in enumerate(titles) if title]
    if not chosen:
        raise ValueError("no training row has a title")
    codes = title_codes([titles[index] for index in chosen], config.max_length)
    y = labels[np.array(chosen)]
    per_title = _keys(codes, config.ngram_sizes)
    vocabulary, counts = np.unique(np.concatenate(per_title), return_counts=True)
    keep = counts >= config.min_count
    vocabulary, counts = vocabulary[keep], counts[keep]
    if len(vocabulary) == 0:
        raise ValueError(f"no n-gram occurs in {config.min_count} training titles")
    idf = np.log((1.0 + len(codes)) / (1.0 + counts)) + 1.0
    module = TitleNgrams(config.max_length, config.ngram_sizes, len(vocabulary), num_classes)
    module.vocabulary.copy_(torch.from_numpy(vocabulary))
    module.idf.copy_(torch.from_numpy(idf.astype(np.float32)))
    regression = LogisticRegression(C=config.c, max_iter=config.max_iterations)
    regression.fit(_bags(module, codes), y)
    scores = np.zeros((len(vocabulary) + 1, num_classes), dtype=np.float32)
    bias = np.full(num_classes, -30.0, dtype=np.float32)  # a class no title had: ~1e-13
    seen = regression.classes_.astype(np.int64)
    if len(seen) == 2:  # scikit-learn fits one score for the second class against the first
        scores[: len(vocabulary), seen[1]] = regression.coef_[0]
        bias[seen] = (0.0, regression.intercept_[0])
    else:
        scores[: len(vocabulary), seen] = regression.coef_.T
        bias[seen] = regression.intercept_
    with torch.no_grad():
        module.scores.weight.copy_(torch.from_numpy(scores))
        module.bias.copy_(torch.from_numpy(bias))
    return module.eval()


def title_log_probabilities(module: TitleNgrams, codes: FloatArray) -> FloatArray:
    """(N, C) log-probabilities of the title member for (N, max_length) code points."""
    parts = []
    with torch.inference_mode():
        for start in range(0, len(codes), CHUNK):
            logits = module(torch.from_numpy(codes[start : start + CHUNK]))
            parts.append(torch.log_softmax(logits, dim=1).numpy())
    if not parts:
        return np.zeros((0, module.num_classes), dtype=np.float32)
    result: FloatArray = np.concatenate(parts)
    return result
