"""On a GPU the default audio model runs in reduced precision and CUDA graphs only where its
answers on real audio stay within 1e-3 of float32's (issue #24). Skipped without CUDA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modelcore.checkpoint import load_checkpoint
from modelcore.frontend import resample
from server.runner import AUDIO_TOLERANCE, AudioRunner
from training.audio.data import cut_windows, decode_file

REPOSITORY = Path(__file__).resolve().parents[2] / "models"
TRACKS = ("blues/blues.00000.ogg", "classical/classical.00004.ogg", "metal/metal.00002.ogg")

pytestmark = pytest.mark.gpu


def default_audio_version() -> Path:
    model = REPOSITORY / "gtzan-cnn-lstm"
    return max((p for p in model.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def real_windows(data_dir: Path, runner: AudioRunner) -> np.ndarray:
    """Whole tracks cut into the model's windows, at the model's rate (GTZAN's own, 22,050)."""
    frontend = runner.frontend_config
    windows: list[np.ndarray] = []
    for track in TRACKS:
        samples, rate = decode_file(data_dir / "gtzan" / "audio" / track)
        if rate != frontend.sample_rate:
            samples = resample(samples, rate, frontend.sample_rate)
        windows.extend(cut_windows(samples, frontend.window_samples, frontend.window_samples))
    return np.stack(windows).astype(np.float32)


def test_reduced_precision_and_graphs_stay_within_1e_3_on_real_audio(data_dir: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the GPU path cannot run here")
    cuda = torch.device("cuda")
    version = default_audio_version()
    exact = AudioRunner(load_checkpoint(version), cuda, "float32", "off")
    served = AudioRunner(load_checkpoint(version), cuda)  # what the server chooses by default
    served.warm_up(32)
    assert served.precision == "bfloat16" or served.graphs == "on", (
        served.precision,
        served.precision_error,
        served.graphs,
    )
    windows = real_windows(data_dir, exact)
    for start in range(0, len(windows), 32):
        batch = windows[start : start + 32]
        difference = np.nanmax(np.abs(served.run(batch) - exact.run(batch)))
        assert difference <= AUDIO_TOLERANCE, (difference, served.precision, served.graphs)
