"""Gradient-boosted trees as tensors, and their blend with an MLP ensemble.

Trees are fitted by scikit-learn (``training.boosting``) but served by the same torch server as
every other model: each tree becomes rows of a few index/threshold tensors, stored in
safetensors like any weight (no pickle), and evaluated for a whole batch at once by walking all
trees one level per step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from training.models.ensemble import MLPEnsemble
from training.models.mlp import MLPClassifier


class TreeEnsemble(nn.Module):
    """``trees`` regression trees, each adding its leaf value to the logit of its class.

    Node ``n`` of tree ``t`` sends a row left when ``features[feature[t, n]] <= threshold[t,
    n]``; leaves point to themselves, so ``depth`` steps from the roots reach every leaf. Trees
    are padded to ``nodes`` entries. Thresholds and the comparison are float64, as scikit-learn
    compares, so no row near a threshold takes the other branch.

    Args:
        input_dim, num_classes: feature and class counts.
        trees, nodes, depth: the tensors' shapes (filled by ``load_state_dict``).
    """

    feature: torch.Tensor
    threshold: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor
    value: torch.Tensor
    tree_class: torch.Tensor
    baseline: torch.Tensor

    def __init__(self, input_dim: int, num_classes: int, trees: int, nodes: int, depth: int):
        super().__init__()
        if min(input_dim, num_classes, trees, nodes) < 1 or depth < 0:
            raise ValueError("a tree ensemble needs positive sizes and a depth of at least 0")
        self.input_dim, self.num_classes, self.depth = input_dim, num_classes, depth
        self.params = {
            "input_dim": input_dim,
            "num_classes": num_classes,
            "trees": trees,
            "nodes": nodes,
            "depth": depth,
        }
        self.register_buffer("feature", torch.zeros(trees, nodes, dtype=torch.int64))
        self.register_buffer("threshold", torch.zeros(trees, nodes, dtype=torch.float64))
        self.register_buffer("left", torch.zeros(trees, nodes, dtype=torch.int64))
        self.register_buffer("right", torch.zeros(trees, nodes, dtype=torch.int64))
        self.register_buffer("value", torch.zeros(trees, nodes, dtype=torch.float64))
        self.register_buffer("tree_class", torch.zeros(trees, dtype=torch.int64))
        self.register_buffer("baseline", torch.zeros(num_classes, dtype=torch.float64))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) -> (B, num_classes) raw scores (float32)."""
        trees, nodes = self.feature.shape
        rows = features.to(torch.float64)
        offsets = torch.arange(trees, device=rows.device) * nodes
        position = offsets.expand(rows.shape[0], trees)  # every row at every root
        feature, threshold = self.feature.flatten(), self.threshold.flatten()
        # children as global indices, left then right, so one gather takes either branch
        children = (torch.stack([self.left, self.right], dim=2) + offsets[:, None, None]).flatten()
        for _ in range(self.depth):
            goes_right = torch.gather(rows, 1, feature[position]) > threshold[position]
            position = children[position * 2 + goes_right]
        scores = self.baseline.expand(rows.shape[0], -1).clone()
        scores.index_add_(1, self.tree_class, self.value.flatten()[position])
        return scores.to(torch.float32)


class MLPTreeBlend(nn.Module):
    """An MLP ensemble and a tree ensemble averaged in probability space.

    Each part has the temperature fitted for it on validation rows, so the average mixes two
    calibrated distributions; ``forward`` returns the log of the mixture, which the server
    treats as logits (the manifest's own temperature, fitted on the blend, applies on top).
    The two families err differently on tabular data, which is where the gain comes from.

    Args:
        mlp: the ``MLPEnsemble`` (or ``MLPClassifier`` when ``members`` is absent) keywords.
        trees: the ``TreeEnsemble`` keywords.
        mlp_temperature, tree_temperature: each part's validation temperature.
        tree_weight: the trees' share of the mixture, in (0, 1).
    """

    def __init__(
        self,
        mlp: Mapping[str, Any],
        trees: Mapping[str, Any],
        mlp_temperature: float,
        tree_temperature: float,
        tree_weight: float = 0.5,
    ) -> None:
        super().__init__()
        if not 0.0 < tree_weight < 1.0:
            raise ValueError("tree_weight must be in (0, 1)")
        if min(mlp_temperature, tree_temperature) <= 0:
            raise ValueError("temperatures must be positive")
        self.mlp: nn.Module = MLPEnsemble(**mlp) if "members" in mlp else MLPClassifier(**mlp)
        self.trees = TreeEnsemble(**trees)
        self.mlp_temperature, self.tree_temperature = mlp_temperature, tree_temperature
        self.log_weights = (math.log(1.0 - tree_weight), math.log(tree_weight))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) standardised features -> (B, num_classes) log mixture probabilities."""
        mlp = torch.log_softmax(self.mlp(features) / self.mlp_temperature, dim=1)
        trees = torch.log_softmax(self.trees(features) / self.tree_temperature, dim=1)
        return torch.logaddexp(mlp + self.log_weights[0], trees + self.log_weights[1])
