"""An ensemble of identically shaped MLPs, averaged in probability space."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from modelcore.models.mlp import MLPClassifier


class MLPEnsemble(nn.Module):
    """``members`` ``MLPClassifier``s whose softmax outputs are averaged.

    ``forward`` returns ``log(mean(softmax(member logits)))``: log-probabilities of the averaged
    distribution, which behave as logits everywhere a caller applies ``softmax(x / T)``. So the
    server serves an ensemble exactly like a single MLP, and temperature scaling is fitted on
    these outputs as on any logits. Members differ only in their trained weights (seeds, and
    optionally bootstrap samples of the rows); see ``training.features.train.train_model``.

    Args:
        input_dim, num_classes, hidden_sizes, dropout, batch_norm, activation: as
            ``MLPClassifier``, shared by every member.
        members: how many MLPs to average (at least 1).
    """

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        hidden_sizes: Sequence[int] = (256, 128),
        dropout: float = 0.2,
        batch_norm: bool = True,
        activation: str = "gelu",
        members: int = 5,
    ) -> None:
        super().__init__()
        if members < 1:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(
            MLPClassifier(input_dim, num_classes, hidden_sizes, dropout, batch_norm, activation)
            for _ in range(members)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) standardised features -> (B, num_classes) log mean probabilities."""
        log_probabilities = torch.stack(
            [torch.log_softmax(member(features), dim=1) for member in self.members]
        )
        return torch.logsumexp(log_probabilities, dim=0) - math.log(len(self.members))
