"""What the training code computes for rows and files, from a checkpoint's parts alone: the
reference the server's answers are checked against."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from modelcore.frontend import FrontEndConfig, resample
from modelcore.preprocessing import FeaturePreprocessor
from training.audio.data import decode_file
from training.features.train import logits_of

FloatArray = npt.NDArray[np.float32]


def predict_probabilities(
    model: nn.Module,
    preprocessor: FeaturePreprocessor,
    rows: npt.ArrayLike,
    temperature: float = 1.0,
) -> FloatArray:
    """Raw feature rows ``(N, F)`` (NaN = omitted) -> calibrated probabilities ``(N, C)``,
    exactly as the server computes them from the manifest."""
    logits = logits_of(model, preprocessor.transform(rows), torch.device("cpu"))
    return torch.softmax(logits / temperature, dim=1).numpy().astype(np.float32)


def load_for_model(path: Path, config: FrontEndConfig) -> FloatArray:
    """A file decoded, down-mixed and resampled to the model's rate."""
    samples, sample_rate = decode_file(path)
    return resample(samples, sample_rate, config.sample_rate)
