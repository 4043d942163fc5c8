"""The CNN-LSTM built from a manifest entry: batched calls equal per-item calls."""

from __future__ import annotations

import torch

from training.audio_config import AudioModelConfig
from training.models import build_model


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
