"""The title member stacked onto a numeric model: the weights chosen on validation rows, the
served ``TitleBlend`` built, and the model inputs that carry titles.

The stack is ``numeric_weight * numeric logits + title_weight * title log-probabilities +
class_bias``, divided by the numeric model's temperature like every answer: fitted by log-loss
on validation rows with a title that neither member trained on (as the temperature is), so the
two weights say how far to trust each member on unseen artists and the bias removes the class
prior the two members would otherwise count twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from modelcore.models import build_model
from modelcore.models.title import TitleNgrams
from modelcore.models.title_blend import TitleBlend
from modelcore.preprocessing import TEXT_PADDING
from training.features.tabular import StrArray
from training.features.titles import title_codes
from training.features.train import FloatArray, IntArray, TrainResult


@dataclass(frozen=True)
class TitleParts:
    """What a refit or a model trained on every row needs to rebuild a selection's stack."""

    numeric_weight: float
    title_weight: float
    class_bias: tuple[float, ...]

    def to_array(self) -> FloatArray:
        return np.array([self.numeric_weight, self.title_weight, *self.class_bias], np.float64)

    @classmethod
    def from_array(cls, values: Sequence[float]) -> TitleParts:
        return cls(float(values[0]), float(values[1]), tuple(float(v) for v in values[2:]))

    @classmethod
    def median(cls, parts: Sequence[TitleParts]) -> TitleParts:
        """Each value's median over the folds (as epochs and temperatures are chosen)."""
        return cls.from_array(np.median([part.to_array() for part in parts], axis=0).tolist())


def fit_title_stack(
    numeric_logits: torch.Tensor,
    title_log_probabilities: FloatArray,
    labels: IntArray,
    temperature: float,
) -> TitleParts:
    """The weights and class bias minimising the log-loss of ``softmax((numeric_weight * z +
    title_weight * s + class_bias) / temperature)`` on the given rows (L-BFGS in float64)."""
    z = numeric_logits.to(torch.float64) / temperature
    s = torch.from_numpy(title_log_probabilities).to(torch.float64) / temperature
    targets = torch.from_numpy(labels)
    weights = torch.tensor([1.0, 0.5], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weights, bias], lr=1.0, max_iter=500, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = weights[0] * z + weights[1] * s + bias / temperature
        loss = nn.functional.cross_entropy(logits, targets)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    numeric_weight, title_weight = (float(value) for value in weights.detach())
    centred = bias.detach() - bias.detach().mean()
    return TitleParts(max(numeric_weight, 1e-3), max(title_weight, 0.0), tuple(centred.tolist()))


def with_title(
    numeric: TrainResult, member: TitleNgrams, parts: TitleParts, numeric_features: int
) -> TrainResult:
    """``numeric`` (its epochs and history kept) as a ``TitleBlend`` with ``member``."""
    params: dict[str, Any] = {
        "numeric": dict(numeric.architecture),
        "title": {
            "max_length": member.max_length,
            "ngram_sizes": list(member.ngram_sizes),
            "vocabulary_size": member.vocabulary_size,
            "num_classes": member.num_classes,
        },
        "numeric_features": numeric_features,
        "numeric_weight": parts.numeric_weight,
        "title_weight": parts.title_weight,
    }
    architecture: dict[str, object] = {"type": "title_blend", "params": params}
    blend = build_model(architecture)
    assert isinstance(blend, TitleBlend)
    blend.numeric.load_state_dict(numeric.model.state_dict())
    blend.title.load_state_dict(member.state_dict())
    blend.class_bias.copy_(torch.tensor(parts.class_bias, dtype=torch.float32))
    return TrainResult(
        model=blend.eval(),
        architecture=architecture,
        best_epoch=numeric.best_epoch,
        epochs_run=numeric.epochs_run,
        history=numeric.history,
        member_epochs=numeric.member_epochs,
    )


def with_codes(x: FloatArray, titles: StrArray | None, max_length: int) -> FloatArray:
    """Standardised numeric rows ``(N, F)`` and their titles' code points: ``(N, F + max_length)``,
    as the server hands them to the model (no titles: every row untitled)."""
    codes = (
        title_codes(titles.tolist(), max_length)
        if titles is not None
        else np.full((len(x), max_length), TEXT_PADDING, dtype=np.float32)
    )
    result: FloatArray = np.concatenate([x, codes], axis=1)
    return result


def untitled(inputs: FloatArray, numeric_features: int) -> FloatArray:
    """The same rows with their titles taken away."""
    result = inputs.copy()
    result[:, numeric_features:] = TEXT_PADDING
    return result
