"""The frozen settings of one ``genre-train abstention`` run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.abstention.codecs import STUDY_CODECS, Codec


@dataclass(frozen=True)
class AbstentionRunConfig:
    """``base``: the audio-ensemble version to extend; ``cnn_lstm_selection``: the train-only
    CNN-LSTM of its members' command (``genre-train audio --no-refit``), which scores the valid
    list honestly; ``refusal_budget``: the most valid music ``min_probability`` may refuse
    (windows and tracks, all reasons together) in any of ``codecs`` and uncoded.

    ``lossy_copies``: how many copies of each training clip of non-music go through a codec
    drawn from ``codecs.TRAINING_CODECS`` besides the clean one; ``music_lossy_copies``: the
    same for each training track (30 s where a clip is 12, so one copy costs as much as two);
    ``codecs``: the round trips the valid non-music is measured after, ``music_codecs`` those
    the valid music is (and the threshold chosen over): each codec at a common bitrate, since a
    copy of the valid list costs a quarter of an hour of one CPU thread; coded clips at
    ``coded_hop_seconds`` (every other window of the served hop); ``cache``: where the
    ensemble's window tables are kept between runs (None: nowhere)."""

    data: Path
    base: Path
    cnn_lstm_selection: Path
    out: Path
    splits_dir: Path
    seed: int = 0
    device: str = "auto"
    silence_dbfs: float = -60.0
    music_threshold: float = 0.5
    refusal_budget: float = 0.01
    train_hop_seconds: float = 3.0
    clip_seconds: float = 12.0  # each made non-music clip
    clips_per_voice: int = 4
    clips_per_kind: int = 6  # of each noise colour, hum, tones and near-silence (v4: 12)
    lossy_copies: int = 2
    music_lossy_copies: int = 1
    coded_hop_seconds: float = 3.0
    codecs: tuple[Codec, ...] = STUDY_CODECS
    music_codecs: tuple[Codec, ...] = STUDY_CODECS[:4]
    cache: Path | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.refusal_budget < 1:
            raise ValueError(f"refusal_budget must be in [0, 1), got {self.refusal_budget}")
        if min(self.lossy_copies, self.music_lossy_copies) < 0:
            raise ValueError("lossy_copies and music_lossy_copies must be >= 0")
        if not set(self.music_codecs) <= set(self.codecs):
            raise ValueError("music_codecs must be among codecs")
