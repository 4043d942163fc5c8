"""What the served ensemble computes for a window, gathered for fitting and measuring abstention.

Each window goes through the version's own front-ends and modules, exactly as
``server.runner.AudioRunner`` runs them, so the detector learns from what it will be given and
the measured thresholds are the served ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from tqdm import tqdm

from modelcore.abstention import level_dbfs
from modelcore.checkpoint import Checkpoint
from modelcore.frontend import FrontEndConfig, build_frontend
from modelcore.models import build_model
from modelcore.models.audio_ensemble import AudioEnsemble, detector_inputs
from training.abstention.cache import ArrayCache, digest
from training.audio.data import cut_windows

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BATCH_WINDOWS = 16


@dataclass(frozen=True)
class WindowTable:
    """One row per window: the version's calibrated genre ``probabilities`` (W, C), the
    detector's ``descriptors`` (W, D), the RMS ``levels`` in dBFS (W,), and the ``clip`` (W,)
    each window came from (an index into the caller's list of clips)."""

    probabilities: FloatArray
    descriptors: FloatArray
    levels: FloatArray
    clip: IntArray

    def take(self, mask: npt.NDArray[np.bool_]) -> WindowTable:
        return WindowTable(
            self.probabilities[mask], self.descriptors[mask], self.levels[mask], self.clip[mask]
        )

    def to_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        """The table as named arrays (what ``cache.ArrayCache`` stores)."""
        return {
            "probabilities": self.probabilities,
            "descriptors": self.descriptors,
            "levels": self.levels,
            "clip": self.clip,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[np.generic]]) -> WindowTable:
        return cls(
            probabilities=arrays["probabilities"].astype(np.float32),
            descriptors=arrays["descriptors"].astype(np.float32),
            levels=arrays["levels"].astype(np.float32),
            clip=arrays["clip"].astype(np.int64),
        )


class EnsembleWindows:
    """A loaded audio-ensemble version that describes windows as its server would; ``cache``
    (a directory, or None) keeps tables between runs (``training.abstention.variants``)."""

    def __init__(
        self, checkpoint: Checkpoint, device: torch.device, cache: Path | None = None
    ) -> None:
        manifest = checkpoint.manifest
        model = build_model(manifest.architecture)
        if not isinstance(model, AudioEnsemble):
            raise ValueError(f"{checkpoint.directory}: not an audio ensemble version")
        model.load_state_dict(checkpoint.state_dict, strict=True)
        self.model = model.eval().to(device)
        self.contract = FrontEndConfig.from_dict(manifest.frontend)
        rate = self.contract.sample_rate
        specs = manifest.architecture["inputs"]
        self.frontends = [build_frontend(spec, rate).to(device).eval() for spec in specs]
        self.temperature = manifest.temperature
        self.device = device
        self.cache = ArrayCache(cache)
        # What a table depends on besides its audio: the front-ends and the genre tensors, not
        # the detector, so a version that changes only its detector reuses its base's tables.
        self.fingerprint = digest(
            [
                repr(specs),
                repr(self.temperature),
                *(
                    part
                    for key, tensor in sorted(checkpoint.state_dict.items())
                    if not key.startswith("detector.")
                    for part in (key, tensor.numpy())
                ),
            ]
        )

    def describe(self, windows: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(W, window_samples) -> calibrated probabilities (W, C), descriptors (W, D)."""
        with torch.inference_mode():
            waveforms = torch.from_numpy(windows).to(self.device)
            spectrogram, patches = (frontend(waveforms) for frontend in self.frontends)
            features = self.model.tagger_features(patches)
            logits = self.model.fuse(self.model.member_log_probabilities(spectrogram, features))
            probabilities = torch.softmax(logits / self.temperature, dim=1)
            descriptors = detector_inputs(spectrogram, features)
        return probabilities.cpu().numpy(), descriptors.cpu().numpy()

    def cut(self, clips: Sequence[FloatArray], hop_seconds: float) -> list[FloatArray]:
        """Each clip's windows (hop ``hop_seconds``, one more flush with the end, as a stream's
        final answer covers its tail)."""
        window = self.contract.window_samples
        hop = round(hop_seconds * self.contract.sample_rate)
        return [cut_windows(samples, window, hop) for samples in clips]

    def table(
        self, clips: Sequence[FloatArray], hop_seconds: float, progress: bool = True, desc: str = ""
    ) -> WindowTable:
        """Every window of every clip."""
        return self.table_of(self.cut(clips, hop_seconds), progress, desc)

    def table_of(
        self, per_clip: Sequence[FloatArray], progress: bool = True, desc: str = ""
    ) -> WindowTable:
        """The table of windows already cut (``cut``), one array of windows per clip."""
        owner = np.concatenate([np.full(len(w), i) for i, w in enumerate(per_clip)])
        every = np.concatenate(per_clip)
        parts = [
            self.describe(every[start : start + BATCH_WINDOWS])
            for start in tqdm(
                range(0, len(every), BATCH_WINDOWS), desc=desc, disable=not progress, leave=False
            )
        ]
        return WindowTable(
            probabilities=np.concatenate([p for p, _ in parts]),
            descriptors=np.concatenate([d for _, d in parts]),
            levels=np.array([level_dbfs(w) for w in every], dtype=np.float32),
            clip=owner.astype(np.int64),
        )
