"""The model every peer serves: our ``FeaturesRunner`` on a version's files, float32, on the CPU.

It runs inside the peer's process (Triton's Python backend stub, an MLServer worker), where the
peer's adapter has put this checkout first on ``sys.path`` and the main venv's packages last, so
torch, safetensors and our code come from where the server's do. The preprocessing from the
manifest, the fused MLP ensemble, the temperature and the softmax are the very ones ours runs,
with the thread count ours would use for the same number of processes.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from modelcore.checkpoint import load_checkpoint
from server.runner import FeaturesRunner

FloatArray = npt.NDArray[np.float32]
FEATURES, PROBABILITIES = "FEATURES", "PROBABILITIES"  # the tensor names ours-v2 uses


def load_runner(version: Path, threads: int, max_batch_size: int = 256) -> FeaturesRunner:
    """The version checked (checksums), loaded and warmed up, as our registry would."""
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # only settable before any inter-op work started
        torch.set_num_interop_threads(1)
    runner = FeaturesRunner(load_checkpoint(version), torch.device("cpu"))
    runner.warm_up(max_batch_size)
    return runner


def answer(runner: FeaturesRunner, parts: Sequence[npt.ArrayLike]) -> list[FloatArray]:
    """One forward pass for a batch of requests: each request's ``(n_i, F)`` rows in, its
    ``(n_i, C)`` probabilities out, in order."""
    arrays = [
        np.asarray(part, dtype=np.float32).reshape(-1, len(runner.feature_names)) for part in parts
    ]
    probabilities = runner.run(np.concatenate(arrays))
    bounds = np.cumsum([0, *(array.shape[0] for array in arrays)])
    return [probabilities[start:end] for start, end in itertools.pairwise(bounds)]
