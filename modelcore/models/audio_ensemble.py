"""The audio ensemble: the CNN-LSTM and a genre head on the pretrained musicnn tagger, fused.

Members vote in log-probability space with weights, plus a per-class bias that sets the class
prior the ensemble assumes; the weights, the bias and the head are chosen on validation tracks
(``training.tagger.ensemble``). The output behaves as logits, so the server's temperature and
softmax apply as to any model.

A version may also carry a music detector (``MusicDetector``): a logistic regression on what the
ensemble computes anyway (the tagger's features and the log-mel's per-band level and movement),
so telling music from speech and noise costs one small matrix product per window
(``training.abstention``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from modelcore.models.cnn_lstm import CNNLSTMClassifier
from modelcore.models.musicnn import Musicnn


class TaggerHead(nn.Module):
    """(B, 200 + 50) tagger penultimate activations and tag probabilities -> (B, C) logits:
    standardised with the training windows' statistics, then one linear layer (a multinomial
    logistic regression: 254 tracks support little more)."""

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, input_dim: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("scale", torch.ones(input_dim))
        self.linear = nn.Linear(input_dim, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features - self.mean) / self.scale)  # type: ignore[no-any-return]


class MusicDetector(nn.Module):
    """(B, D) window descriptors (``detector_inputs``) -> (B,) logit that the window is music:
    standardised, then one linear layer."""

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("scale", torch.ones(input_dim))
        self.linear = nn.Linear(input_dim, 1)

    def forward(self, descriptors: torch.Tensor) -> torch.Tensor:
        return self.linear((descriptors - self.mean) / self.scale)[:, 0]  # type: ignore[no-any-return]


def detector_inputs(spectrogram: torch.Tensor, tagger_features: torch.Tensor) -> torch.Tensor:
    """(B, 1, mels, T) log-mel and (B, 250) tagger features -> (B, 250 + 2 mels): the tagger's
    view beside each band's mean and spread over time (steady noise barely moves; music and
    speech do)."""
    bands = spectrogram[:, 0]
    return torch.cat([tagger_features, bands.mean(dim=2), bands.std(dim=2)], dim=1)


def tagger_features(tagger: Musicnn, patches: torch.Tensor) -> torch.Tensor:
    """(B, frames, mels) -> (B, 250): penultimate activations beside the tag probabilities."""
    output = tagger(patches)
    return torch.cat([output.penultimate, torch.sigmoid(output.logits)], dim=1)


class AudioEnsemble(nn.Module):
    """(B, 1, mels, T) CNN-LSTM log-mel and (B, 187, 96) tagger patches -> (B, C) fused logits.

    Args:
        num_classes: genres.
        cnn_lstm: ``CNNLSTMClassifier`` parameters (num_classes included).
        tagger: ``Musicnn`` parameters.
        head_inputs: width of the tagger features the head reads (250).
        tagger_chunk: on a CPU the tagger runs this many windows at a time: its wide timbral
            filters make a 9 MB activation per window, and batches of two stay in cache
            (measured on 2 cores, a batch of 16: 41 ms per window whole, 27 ms in twos).
        music_detector_inputs: width of the music detector's input (``detector_inputs``);
            0 for a version without one.
    Buffers (chosen on validation tracks): ``member_weights`` (2,), ``class_bias`` (C,).
    """

    MEMBERS = ("cnn_lstm", "tagger_head")
    member_weights: torch.Tensor
    class_bias: torch.Tensor

    def __init__(
        self,
        num_classes: int,
        cnn_lstm: Mapping[str, Any],
        tagger: Mapping[str, Any] | None = None,
        head_inputs: int = 250,
        tagger_chunk: int = 2,
        music_detector_inputs: int = 0,
    ) -> None:
        super().__init__()
        self.cnn_lstm = CNNLSTMClassifier(**cnn_lstm)
        self.tagger = Musicnn(**(tagger or {}))
        self.head = TaggerHead(head_inputs, num_classes)
        self.tagger_chunk = tagger_chunk
        self.register_buffer("member_weights", torch.ones(len(self.MEMBERS)) / len(self.MEMBERS))
        self.register_buffer("class_bias", torch.zeros(num_classes))
        self.detector = MusicDetector(music_detector_inputs) if music_detector_inputs else None

    def tagger_features(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, frames, mels) -> (B, 250), in chunks on a CPU (see ``tagger_chunk``)."""
        if patches.device.type != "cpu" or len(patches) <= self.tagger_chunk:
            return tagger_features(self.tagger, patches)
        chunks = torch.split(patches, self.tagger_chunk)
        return torch.cat([tagger_features(self.tagger, chunk) for chunk in chunks])

    def member_log_probabilities(
        self, spectrogram: torch.Tensor, features: torch.Tensor
    ) -> torch.Tensor:
        """(B, members, C): each member's log-probabilities, from the log-mel and the tagger's
        features (``tagger_features``)."""
        logits = torch.stack([self.cnn_lstm(spectrogram), self.head(features)], dim=1)
        return torch.log_softmax(logits, dim=2)

    def fuse(self, member_log_probabilities: torch.Tensor) -> torch.Tensor:
        """(B, members, C) -> (B, C) weighted sum plus the class bias."""
        fused = (member_log_probabilities * self.member_weights[None, :, None]).sum(dim=1)
        return fused + self.class_bias

    def classify(
        self, spectrogram: torch.Tensor, patches: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, C) fused logits and, when the version has a detector, (B,) music logits."""
        features = self.tagger_features(patches)
        logits = self.fuse(self.member_log_probabilities(spectrogram, features))
        if self.detector is None:
            return logits, None
        return logits, self.detector(detector_inputs(spectrogram, features))

    def forward(self, spectrogram: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        return self.classify(spectrogram, patches)[0]
