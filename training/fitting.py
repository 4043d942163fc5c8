"""Fitting helpers both tracks share: the device, seeded determinism, class weights and the
temperature that calibrates a model's logits on held-out rows."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

DEVICES = ("auto", "cpu", "cuda")
IntArray = npt.NDArray[np.int64]


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seeds every generator and asks for deterministic kernels, restoring the global
    determinism flag afterwards so code sharing the process (tests, a server) is unaffected."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    previous = torch.are_deterministic_algorithms_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    else:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def class_weights(labels: IntArray, num_classes: int) -> torch.Tensor:
    """Inverse class frequency, normalised to mean 1 (``balanced``); absent classes get 1."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 1.0)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def fit_temperature(logits: torch.Tensor, labels: IntArray) -> float:
    """The temperature T in [0.05, 20] minimising log-loss of ``softmax(logits / T)`` (LBFGS on
    log T, clamped inside the loss too: on a few nearly separable rows the optimum runs off to
    0 or infinity, and an unbounded line search there returns NaN)."""
    log_temperature = torch.zeros(1, requires_grad=True)
    targets = torch.from_numpy(labels)
    optimizer = torch.optim.LBFGS([log_temperature], lr=0.1, max_iter=200)
    bounds = (math.log(0.05), math.log(20.0))

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        temperature = log_temperature.clamp(*bounds).exp()
        loss = nn.functional.cross_entropy(logits / temperature, targets)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    return float(log_temperature.detach().clamp(*bounds).exp())
