"""A configurable multi-layer perceptron for tabular track features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


class MLPClassifier(nn.Module):
    """Linear -> [BatchNorm] -> activation -> dropout blocks, then a linear head to logits.

    Args:
        input_dim: number of (standardised) input features.
        num_classes: number of genres.
        hidden_sizes: width of each hidden block, in order.
        dropout: dropout probability after each hidden block.
        batch_norm: whether each hidden block normalises before its activation.
        activation: one of ``ACTIVATIONS``.
    """

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        hidden_sizes: Sequence[int] = (256, 128),
        dropout: float = 0.2,
        batch_norm: bool = True,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        if input_dim <= 0 or num_classes <= 1:
            raise ValueError("input_dim must be positive and num_classes at least 2")
        if any(size <= 0 for size in hidden_sizes):
            raise ValueError("hidden sizes must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        width = input_dim
        for size in hidden_sizes:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) standardised features -> (B, num_classes) logits."""
        return self.head(self.body(features))  # type: ignore[no-any-return]
