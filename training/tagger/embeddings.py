"""What the tagger makes of each window, computed as the server computes it.

Windows at the CNN-LSTM's 22,050 Hz go through ``MusicnnFrontEnd`` (resampled on the way in) and
``AudioEnsemble.tagger_features``, so the head learns from exactly what it is given when serving.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from tqdm import tqdm

from modelcore.frontend import MusicnnFrontEnd
from modelcore.models.audio_ensemble import AudioEnsemble

FloatArray = npt.NDArray[np.float32]
BATCH_WINDOWS = 16


def embed_windows(
    ensemble: AudioEnsemble,
    frontend: MusicnnFrontEnd,
    windows: FloatArray,
    device: torch.device,
    progress: bool = False,
) -> FloatArray:
    """(W, samples) windows at the front-end's input rate -> (W, 250) tagger features."""
    parts = []
    starts = range(0, len(windows), BATCH_WINDOWS)
    with torch.inference_mode():
        for start in tqdm(starts, desc="tagger", disable=not progress, leave=False):
            batch = torch.from_numpy(windows[start : start + BATCH_WINDOWS]).to(device)
            parts.append(ensemble.tagger_features(frontend(batch)).cpu().numpy())
    features: FloatArray = np.concatenate(parts)
    return features
