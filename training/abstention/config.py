"""The frozen settings of one ``genre-train abstention`` run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AbstentionRunConfig:
    """``base``: the audio-ensemble version to extend; ``cnn_lstm_selection``: the train-only
    CNN-LSTM of its members' command (``genre-train audio --no-refit``), which scores the valid
    list honestly; ``refusal_budget``: the most valid music ``min_probability`` may refuse
    (windows and tracks, all reasons together), below the 3% promised, to leave room for music
    less like the valid list's."""

    data: Path
    base: Path
    cnn_lstm_selection: Path
    out: Path
    splits_dir: Path
    seed: int = 0
    device: str = "auto"
    silence_dbfs: float = -60.0
    music_threshold: float = 0.5
    refusal_budget: float = 0.02
    train_hop_seconds: float = 3.0
    clip_seconds: float = 12.0  # each made non-music clip
    clips_per_voice: int = 4
    clips_per_kind: int = 12  # of each noise colour, hum, tones and near-silence
