"""What one ensemble run needs; every figure it writes traces back to these fields."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.tagger.wheel import DEFAULT_WHEEL


@dataclass(frozen=True)
class EnsembleRunConfig:
    """``cnn_lstm`` is the member that ships (a version trained on train+valid);
    ``cnn_lstm_selection`` the same command's train-only model, which the choices on the valid
    list are made with (``genre-train audio --no-refit``)."""

    data: Path
    cnn_lstm: Path
    cnn_lstm_selection: Path
    out: Path = Path("models")
    name: str = "gtzan-cnn-lstm"
    wheel: Path = DEFAULT_WHEEL
    tagger_model: str = "MSD_musicnn"
    splits_dir: Path | None = None
    seed: int = 0
    device: str = "cpu"

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "tagger_model": self.tagger_model,
            "cnn_lstm": str(self.cnn_lstm),
            "cnn_lstm_selection": str(self.cnn_lstm_selection),
            "seed": self.seed,
        }
