"""A numeric features model with an optional title member, in one float32 matrix per batch.

Each input row is the numeric model's ``numeric_features`` standardised columns followed by the
title's ``max_length`` code-point columns (-1 padding; all -1 for a row without a title). A row
without a title gets the numeric model's logits exactly, bit for bit: the title member runs only
on the rows that have one, and only those rows are replaced. A row with a title gets
``numeric_weight * numeric + title_weight * log_softmax(title) + class_bias``, a stacked
product of the two members fitted on validation rows that neither member trained on (the bias
takes out the class prior both members carry); the manifest's temperature applies to every row
as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from modelcore.models.title import TitleNgrams


class TitleBlend(nn.Module):
    """The numeric model (any ``modelcore.models`` architecture) blended with ``TitleNgrams``.

    Built from a manifest by ``modelcore.models.build_model``, which builds ``numeric`` from its
    own ``architecture`` entry ({type, params}) first.

    Args:
        numeric: the numeric model.
        title: ``TitleNgrams`` keywords.
        numeric_features: the numeric model's input width.
        numeric_weight, title_weight: the stacking weights of the two members.
    """

    class_bias: torch.Tensor

    def __init__(
        self,
        numeric: nn.Module,
        title: Mapping[str, Any],
        numeric_features: int,
        numeric_weight: float,
        title_weight: float,
    ) -> None:
        super().__init__()
        if numeric_features < 1:
            raise ValueError("numeric_features must be positive")
        if numeric_weight <= 0 or title_weight < 0:
            raise ValueError("numeric_weight must be positive and title_weight non-negative")
        self.numeric = numeric
        self.title = TitleNgrams(**title)
        self.numeric_features = numeric_features
        self.numeric_weight, self.title_weight = float(numeric_weight), float(title_weight)
        self.register_buffer("class_bias", torch.zeros(self.title.num_classes))

    @property
    def input_width(self) -> int:
        return self.numeric_features + self.title.max_length

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, numeric_features + max_length) -> (B, C) logits; rows whose first title column
        is padding get the numeric model's own logits."""
        numeric = self.numeric(inputs[:, : self.numeric_features])
        codes = inputs[:, self.numeric_features :]
        titled = torch.nonzero(codes[:, 0] >= 0).flatten()
        if titled.numel() == 0:
            return numeric  # type: ignore[no-any-return]
        title = torch.log_softmax(self.title(codes[titled]).float(), dim=1)
        blended = self.numeric_weight * numeric[titled] + self.title_weight * title
        result = numeric.clone()
        result[titled] = (blended + self.class_bias).to(result.dtype)
        return result  # type: ignore[no-any-return]
