"""The CNN-LSTM built from a manifest entry: batched calls equal per-item calls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modelcore.models import build_model
from training.audio.config import AudioModelConfig
from training.audio.train import loss_weights


def test_batched_call_equals_per_item_calls() -> None:
    torch.manual_seed(0)
    model = build_model(AudioModelConfig().architecture(n_mels=32, num_classes=4)).eval()
    batch = torch.randn(5, 1, 32, 40)
    with torch.inference_mode():
        together = model(batch)
        alone = torch.cat([model(batch[i : i + 1]) for i in range(len(batch))])
    assert together.shape == (5, 4)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_architecture_entry_names_every_constructor_keyword() -> None:
    entry = AudioModelConfig((8, 16), lstm_hidden=16, head_hidden=32).architecture(64, 10)
    assert entry["type"] == "cnn_lstm"
    model = build_model(entry)
    assert model(torch.zeros(2, 1, 64, 130)).shape == (2, 10)


def test_sqrt_weights_are_gentler_than_balanced() -> None:
    labels = np.array([0] * 40 + [1] * 4 + [2], dtype=np.int64)
    balanced = loss_weights(labels, 3, "balanced")
    gentle = loss_weights(labels, 3, "sqrt")
    assert balanced is not None
    assert gentle is not None
    assert float(gentle.mean()) == pytest.approx(1.0)
    assert float(gentle[2] / gentle[0]) == pytest.approx(float(balanced[2] / balanced[0]) ** 0.5)
    assert loss_weights(labels, 3, "none") is None
