"""Gradient-boosted trees for the feature models: fitted by scikit-learn, served as tensors.

On the Spotify set under artist-grouped cross-validation, trees alone score like the MLP
ensemble, but the average of the two is about a point of accuracy and 0.025 of log-loss better
than either (training/README.md), so a run with ``TreeConfig`` ships an ``MLPTreeBlend``.
The number of boosting rounds is chosen on the validation rows (log-loss, like the MLP's epochs)
and reused for the refit, as the MLP's epochs are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from modelcore.models.trees import MLPTreeBlend, TreeEnsemble
from training.features.config import TreeConfig
from training.features.train import FloatArray, IntArray, TrainResult, logits_of
from training.fitting import fit_temperature

_ABSENT_CLASS_SCORE = -30.0  # a class the training rows never held: probability ~1e-13


def fit_booster(
    x: FloatArray, y: IntArray, config: TreeConfig, rounds: int | None = None, seed: int = 0
) -> HistGradientBoostingClassifier:
    """``rounds`` boosting rounds (``config.max_rounds`` when None), no internal early stop:
    the rounds are chosen on our own grouped validation rows instead."""
    booster = HistGradientBoostingClassifier(
        learning_rate=config.learning_rate,
        max_iter=rounds if rounds is not None else config.max_rounds,
        max_leaf_nodes=config.max_leaf_nodes,
        l2_regularization=config.l2_regularization,
        min_samples_leaf=config.min_samples_leaf,
        early_stopping=False,
        random_state=seed,
    )
    return booster.fit(x, y)


def best_rounds(
    booster: HistGradientBoostingClassifier, x_valid: FloatArray, y_valid: IntArray
) -> int:
    """The round count with the lowest validation log-loss."""
    seen = {int(label): column for column, label in enumerate(booster.classes_)}
    columns = np.array([seen.get(int(label), -1) for label in y_valid])
    losses = []
    for probabilities in booster.staged_predict_proba(x_valid):
        chosen = np.where(columns >= 0, probabilities[np.arange(len(y_valid)), columns], 0.0)
        losses.append(float(-np.log(np.clip(chosen, 1e-15, 1.0)).mean()))
    return int(np.argmin(losses)) + 1


def tree_ensemble(
    booster: HistGradientBoostingClassifier,
    input_dim: int,
    num_classes: int,
    rounds: int | None = None,
) -> TreeEnsemble:
    """The booster's trees (its first ``rounds`` rounds, or all) as a ``TreeEnsemble`` (its
    ``params`` are its manifest ``architecture`` parameters).

    Reads scikit-learn's fitted predictors (``_predictors``, ``_baseline_prediction``; the
    version is pinned). A binary booster grows one tree per round for its second class.
    """
    classes = [int(label) for label in booster.classes_]
    baseline = np.full(num_classes, _ABSENT_CLASS_SCORE)
    raw_baseline = np.asarray(booster._baseline_prediction, dtype=np.float64).ravel()
    if len(classes) == 2:
        baseline[classes[0]], baseline[classes[1]] = 0.0, raw_baseline[0]
        tree_classes = [classes[1]]
    else:
        baseline[classes] = raw_baseline
        tree_classes = classes
    trees = [
        (predictor.nodes, tree_classes[k])
        for round_predictors in booster._predictors[:rounds]
        for k, predictor in enumerate(round_predictors)
    ]
    nodes = max(len(tree) for tree, _ in trees)
    depth = max(int(tree["depth"].max()) for tree, _ in trees)
    shape = (len(trees), nodes)
    feature, left, right = (np.zeros(shape, dtype=np.int64) for _ in range(3))
    threshold, value = np.zeros(shape), np.zeros(shape)
    for index, (tree, _) in enumerate(trees):
        count = len(tree)
        leaf = tree["is_leaf"].astype(bool)
        own = np.arange(count)
        feature[index, :count] = np.where(leaf, 0, tree["feature_idx"])
        threshold[index, :count] = np.where(leaf, 0.0, tree["num_threshold"])
        left[index, :count] = np.where(leaf, own, tree["left"])
        right[index, :count] = np.where(leaf, own, tree["right"])
        value[index, :count] = tree["value"]
    module = TreeEnsemble(input_dim, num_classes, len(trees), nodes, depth)
    module.load_state_dict(
        {
            "feature": torch.from_numpy(feature),
            "threshold": torch.from_numpy(threshold),
            "left": torch.from_numpy(left),
            "right": torch.from_numpy(right),
            "value": torch.from_numpy(value),
            "tree_class": torch.tensor([label for _, label in trees], dtype=torch.int64),
            "baseline": torch.from_numpy(baseline),
        }
    )
    return module.eval()


@dataclass(frozen=True)
class BlendParts:
    """What a refit or a model trained on every row needs to rebuild a selection's blend."""

    rounds: int
    mlp_temperature: float
    tree_temperature: float


def select_blend(
    mlp: TrainResult,
    x_train: FloatArray,
    y_train: IntArray,
    x_valid: FloatArray,
    y_valid: IntArray,
    num_classes: int,
    config: TreeConfig,
    mlp_temperature: float,
    seed: int,
) -> tuple[TrainResult, BlendParts]:
    """Trees fitted on train with their rounds chosen on valid and their temperature fitted on
    valid (the MLP's, ``mlp_temperature``, was too); the blend in place of the MLP in ``mlp``
    (its epochs and history kept)."""
    booster = fit_booster(x_train, y_train, config, seed=seed)
    rounds = best_rounds(booster, x_valid, y_valid)
    trees = tree_ensemble(booster, int(x_train.shape[1]), num_classes, rounds)
    parts = BlendParts(rounds, mlp_temperature, fit_temperature(logits_of(trees, x_valid), y_valid))
    return _blend(mlp, trees, parts, config), parts


def blend_with_trees(
    mlp: TrainResult,
    x: FloatArray,
    y: IntArray,
    num_classes: int,
    config: TreeConfig,
    parts: BlendParts,
    seed: int,
) -> TrainResult:
    """A refit: trees fitted on ``x`` for the selection's rounds, blended with the refit MLP
    under the selection's part temperatures."""
    booster = fit_booster(x, y, config, parts.rounds, seed)
    trees = tree_ensemble(booster, int(x.shape[1]), num_classes)
    return _blend(mlp, trees, parts, config)


def _blend(
    mlp: TrainResult, trees: TreeEnsemble, parts: BlendParts, config: TreeConfig
) -> TrainResult:
    params = {
        "mlp": dict(mlp.architecture["params"]),  # type: ignore[call-overload]
        "trees": dict(trees.params),
        "mlp_temperature": parts.mlp_temperature,
        "tree_temperature": parts.tree_temperature,
        "tree_weight": config.weight,
    }
    blend = MLPTreeBlend(**params)
    blend.mlp.load_state_dict(mlp.model.state_dict())
    blend.trees.load_state_dict(trees.state_dict())
    architecture: dict[str, object] = {"type": "mlp_tree_blend", "params": params}
    return TrainResult(
        model=blend.eval(),
        architecture=architecture,
        best_epoch=mlp.best_epoch,
        epochs_run=mlp.epochs_run,
        history=mlp.history,
        member_epochs=mlp.member_epochs,
    )
