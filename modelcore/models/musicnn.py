"""musicnn (Pons & Serra 2019), the pretrained music tagger from the ``musicnn`` 0.1.0 wheel, in
torch, so its weights serve beside our own models without TensorFlow.

Layer for layer the TensorFlow graph of ``musicnn.models.build_musicnn`` in inference mode
(batch-norm with its moving statistics, epsilon 1e-3; dropout off), so converted weights give the
same tags and embeddings (``tests/unit/test_musicnn_port.py`` holds it to the original within
1e-4). Time is the convolutions' height and mel bands their width, as in the original, which
keeps the conversion a plain transpose of each kernel.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional

BATCH_NORM_EPSILON = 1e-3  # TensorFlow 1's tf.layers.batch_normalization default


class MusicnnOutput(NamedTuple):
    """What one pass gives, per patch: tag logits (B, tags) and the embeddings to learn from."""

    logits: torch.Tensor  # (B, tags); sigmoid gives the tag probabilities
    penultimate: torch.Tensor  # (B, backend_units): the layer before the tags
    mean_pool: torch.Tensor  # (B, 753): mean over time of front- and mid-end features
    max_pool: torch.Tensor  # (B, 753): max over time of the same


def _batch_norm(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=BATCH_NORM_EPSILON)


class _FrequencyPooledConv(nn.Module):
    """Conv over (time, mel) then ReLU, batch-norm and max over the remaining mel axis.

    ``time_padding`` reproduces the original's padding in time: explicit (3, 3) before a
    'valid' 7-frame timbral filter, TensorFlow's 'same' (k-1)//2 before and the rest after for
    the long temporal filters.

    The pooling is taken first, exactly: ReLU and inference batch-norm are monotonic per channel
    (batch-norm increasing where its scale is positive, decreasing where negative), so the max
    over mels of ``norm(relu(conv))`` is ``norm(relu(max))`` of the conv output where the scale
    is positive and ``norm(relu(min))`` where it is negative. The min is taken as the max of the
    negated filter (negating weights and bias negates every output exactly), so inference makes
    one pass over the conv output (a 9 MB tensor per window for the widest filters) instead of
    three: ReLU and batch-norm then run on the pooled (filters, T) values only.
    """

    def __init__(self, filters: int, time: int, mel: int, time_padding: tuple[int, int]) -> None:
        super().__init__()
        self.time_padding = time_padding
        self.conv = nn.Conv2d(1, filters, kernel_size=(time, mel))
        self.norm = nn.BatchNorm2d(filters, eps=BATCH_NORM_EPSILON)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, mels) -> (B, filters, T)."""
        padded = functional.pad(spectrogram, (0, 0, *self.time_padding))
        if self.training:
            return self.norm(torch.relu(self.conv(padded))).amax(dim=3)  # type: ignore[no-any-return]
        sign = torch.where(self.norm.weight >= 0, 1.0, -1.0)
        bias = self.conv.bias
        signed = functional.conv2d(
            padded,
            self.conv.weight * sign[:, None, None, None],
            None if bias is None else bias * sign,
        )
        extreme = signed.amax(dim=3) * sign[None, :, None]  # max, or min where the scale is < 0
        return self.norm(torch.relu(extreme).unsqueeze(3)).squeeze(3)  # type: ignore[no-any-return]


class Musicnn(nn.Module):
    """(B, T, n_mels) compressed log-mel patches (``modelcore.frontend.MusicnnFrontEnd``) ->
    ``MusicnnOutput``. The published models take T = 187 frames (3 s at 16 kHz, hop 256); any
    T works, as in the original.

    Args:
        n_mels: mel bands (96 in every published model).
        num_tags: tags of the output layer (50).
        frontend_filters: 1.6, the original's multiplier of 128 timbral / 32 temporal filters.
        midend_filters: filters of each of the three mid-end layers (64).
        backend_units: width of the penultimate dense layer (200).
    """

    def __init__(
        self,
        n_mels: int = 96,
        num_tags: int = 50,
        frontend_filters: float = 1.6,
        midend_filters: int = 64,
        backend_units: int = 200,
    ) -> None:
        super().__init__()
        timbral, temporal = int(frontend_filters * 128), int(frontend_filters * 32)
        self.input_norm = nn.BatchNorm2d(1, eps=BATCH_NORM_EPSILON)
        self.timbral = nn.ModuleList(
            _FrequencyPooledConv(timbral, 7, int(share * n_mels), (3, 3)) for share in (0.4, 0.7)
        )
        self.temporal = nn.ModuleList(
            _FrequencyPooledConv(temporal, frames, 1, ((frames - 1) // 2, frames // 2))
            for frames in (128, 64, 32)
        )
        frontend_width = 2 * timbral + 3 * temporal
        self.midend = nn.ModuleList(
            nn.Conv1d(width, midend_filters, kernel_size=7, padding=3)
            for width in (frontend_width, midend_filters, midend_filters)
        )
        self.midend_norms = nn.ModuleList(_batch_norm(midend_filters) for _ in range(3))
        pooled_width = frontend_width + 3 * midend_filters
        self.pool_norm = _batch_norm(2 * pooled_width)
        self.dense = nn.Linear(2 * pooled_width, backend_units)
        self.dense_norm = _batch_norm(backend_units)
        self.tags = nn.Linear(backend_units, num_tags)

    def forward(self, patches: torch.Tensor) -> MusicnnOutput:
        """(B, T, n_mels) -> logits (B, tags), penultimate (B, units), pools (B, 753) each."""
        spectrogram = self.input_norm(patches.unsqueeze(1))  # (B, 1, T, mels)
        branches = [block(spectrogram) for block in (*self.timbral, *self.temporal)]
        frontend = torch.cat(branches, dim=1)  # (B, 561, T)
        layers = [frontend]
        hidden = frontend
        for index, (conv, norm) in enumerate(zip(self.midend, self.midend_norms, strict=True)):
            out = norm(torch.relu(conv(hidden)))  # (B, 64, T)
            hidden = out if index == 0 else out + hidden  # layers 2 and 3 are residual
            layers.append(hidden)
        features = torch.cat(layers, dim=1)  # (B, 753, T)
        max_pool, mean_pool = features.amax(dim=2), features.mean(dim=2)
        # the original flattens (753, 2) pairs: max and mean of each feature side by side
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # (B, 1506)
        penultimate = self.dense_norm(torch.relu(self.dense(self.pool_norm(pooled))))
        return MusicnnOutput(self.tags(penultimate), penultimate, mean_pool, max_pool)
