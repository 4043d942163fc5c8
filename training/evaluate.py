"""Classification metrics from predicted probabilities, and permutation feature importance.

Log-loss and calibration error are computed here in float64 rather than through scikit-learn,
which warns (an error under our test settings) when float32 rows sum to 1 only within rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def log_loss(probabilities: npt.ArrayLike, labels: IntArray) -> float:
    """Mean negative log-probability of the true class (probabilities clipped at 1e-15)."""
    matrix = np.asarray(probabilities, dtype=np.float64)
    matrix = matrix / matrix.sum(axis=1, keepdims=True)
    chosen = np.clip(matrix[np.arange(len(labels)), labels], 1e-15, 1.0)
    return float(-np.log(chosen).mean())


def expected_calibration_error(
    probabilities: npt.ArrayLike, labels: IntArray, bins: int = 15
) -> float:
    """Top-label ECE: |accuracy - confidence| per equal-width confidence bin, row-weighted."""
    matrix = np.asarray(probabilities, dtype=np.float64)
    confidence = matrix.max(axis=1)
    correct = (matrix.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    bin_of_row = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for index in range(bins):
        rows = bin_of_row == index
        if rows.any():
            error += rows.mean() * abs(correct[rows].mean() - confidence[rows].mean())
    return float(error)


def top_k_accuracy(probabilities: npt.ArrayLike, labels: IntArray, k: int = 3) -> float:
    matrix = np.asarray(probabilities, dtype=np.float64)
    top = np.argsort(-matrix, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def classification_metrics(
    probabilities: npt.ArrayLike, labels: IntArray, label_names: Sequence[str]
) -> dict[str, Any]:
    """Headline numbers plus per-class precision/recall/F1 and the confusion matrix."""
    matrix = np.asarray(probabilities, dtype=np.float64)
    classes = list(range(len(label_names)))
    predictions = matrix.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0.0
    )
    return {
        "rows": len(labels),
        "accuracy": float((predictions == labels).mean()),
        "macro_f1": float(
            f1_score(labels, predictions, labels=classes, average="macro", zero_division=0.0)
        ),
        "top3_accuracy": top_k_accuracy(matrix, labels, k=min(3, len(classes))),
        "log_loss": log_loss(matrix, labels),
        "ece": expected_calibration_error(matrix, labels),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(label_names)
        },
        "confusion_matrix": confusion_matrix(labels, predictions, labels=classes).tolist(),
    }


def permutation_importance(
    predict: Callable[[FloatArray], FloatArray],
    x: FloatArray,
    labels: IntArray,
    feature_names: Sequence[str],
    repeats: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """Drop in accuracy and rise in log-loss when one standardised column is shuffled.

    ``predict`` maps standardised rows ``(N, F)`` to probabilities ``(N, C)``. Shuffling a
    standardised column equals shuffling the raw one for rows without imputed values, and is
    what the model actually sees.
    """
    rng = np.random.default_rng(seed)
    base = predict(x)
    base_accuracy = float((base.argmax(axis=1) == labels).mean())
    base_loss = log_loss(base, labels)
    result: dict[str, dict[str, float]] = {}
    for column, name in enumerate(feature_names):
        drops, rises = [], []
        for _ in range(repeats):
            shuffled = x.copy()
            shuffled[:, column] = x[rng.permutation(len(x)), column]
            probabilities = predict(shuffled)
            drops.append(base_accuracy - float((probabilities.argmax(axis=1) == labels).mean()))
            rises.append(log_loss(probabilities, labels) - base_loss)
        result[name] = {
            "accuracy_drop": float(np.mean(drops)),
            "accuracy_drop_std": float(np.std(drops)),
            "log_loss_rise": float(np.mean(rises)),
        }
    return result
