"""A CNN-LSTM ensemble over log-mel windows: spectral patterns and temporal patterns, fused.

The reference design: a convolutional branch learns local time-frequency patterns (timbre,
onsets), a recurrent branch reads the window frame by frame (rhythm, structure); their summaries
are concatenated and a dense head with dropout classifies. Sized for CPU serving.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class CNNLSTMClassifier(nn.Module):
    """(B, 1, n_mels, frames) normalised log-mel -> (B, num_classes) logits.

    Args:
        n_mels: mel bands of the input.
        num_classes: number of genres.
        conv_channels: output channels of each conv block (3x3 conv, BatchNorm, ReLU, 2x2 pool).
        lstm_hidden: hidden size of the bidirectional LSTM over frames.
        head_hidden: width of the dense layer after fusion.
        dropout: dropout before and inside the head.
    """

    def __init__(
        self,
        n_mels: int,
        num_classes: int,
        conv_channels: Sequence[int] = (16, 32, 64),
        lstm_hidden: int = 64,
        head_hidden: int = 128,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if n_mels <= 0 or num_classes <= 1 or not conv_channels:
            raise ValueError("need n_mels > 0, num_classes > 1 and at least one conv block")
        if lstm_hidden <= 0 or head_hidden <= 0 or not 0.0 <= dropout < 1.0:
            raise ValueError("need positive widths and dropout in [0, 1)")
        blocks: list[nn.Module] = []
        channels = 1
        for width in conv_channels:
            blocks += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.conv = nn.Sequential(*blocks)
        self.lstm_input = nn.Linear(n_mels, lstm_hidden)
        self.lstm = nn.LSTM(lstm_hidden, lstm_hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(channels + 2 * lstm_hidden, head_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(head_hidden, num_classes),
        )

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """(B, 1, n_mels, T) -> (B, num_classes)."""
        spectral = self.conv(spectrogram).amax(dim=(2, 3))  # (B, C): strongest pattern anywhere
        frames = spectrogram.squeeze(1).transpose(1, 2)  # (B, T, n_mels)
        sequence, _ = self.lstm(torch.relu(self.lstm_input(frames)))  # (B, T, 2H)
        temporal = sequence.mean(dim=1)  # (B, 2H)
        return self.head(torch.cat([spectral, temporal], dim=1))  # type: ignore[no-any-return]
