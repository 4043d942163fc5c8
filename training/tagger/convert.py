"""musicnn's TensorFlow variables -> our ``Musicnn`` state dict.

TensorFlow 1 named layers by creation order (``conv2d``, ``conv2d_1``, ...); the table below
follows ``musicnn.models.build_musicnn``'s order. Kernels are transposed from TensorFlow's
(height, width, in, out) to torch's (out, in, height, width); the optimiser's Adam slots and
step counters are left behind.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import torch

# TensorFlow layer -> our module, in the original's creation order.
CONVOLUTIONS = {
    "conv2d": "timbral.0.conv",
    "conv2d_1": "timbral.1.conv",
    "conv2d_2": "temporal.0.conv",
    "conv2d_3": "temporal.1.conv",
    "conv2d_4": "temporal.2.conv",
    "conv2d_5": "midend.0",
    "conv2d_6": "midend.1",
    "conv2d_7": "midend.2",
}
NORMS = {
    "batch_normalization": "input_norm",
    "batch_normalization_1": "timbral.0.norm",
    "batch_normalization_2": "timbral.1.norm",
    "batch_normalization_3": "temporal.0.norm",
    "batch_normalization_4": "temporal.1.norm",
    "batch_normalization_5": "temporal.2.norm",
    "batch_normalization_6": "midend_norms.0",
    "batch_normalization_7": "midend_norms.1",
    "batch_normalization_8": "midend_norms.2",
    "batch_normalization_9": "pool_norm",
    "batch_normalization_10": "dense_norm",
}
DENSE = {"dense": "dense", "dense_1": "tags"}
NORM_PARTS = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def _kernel(kernel: npt.NDArray[np.generic], target: str) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(kernel))
    if target.startswith("midend."):  # (7, width, 1, out): a 1-D conv over time
        return tensor[:, :, 0, :].permute(2, 1, 0).contiguous()
    return tensor.permute(3, 2, 0, 1).contiguous()


def convert_musicnn(variables: Mapping[str, npt.NDArray[np.generic]]) -> dict[str, torch.Tensor]:
    """The ``Musicnn`` state dict of a musicnn checkpoint's variables (``read_checkpoint``)."""
    state: dict[str, torch.Tensor] = {}
    for source, target in CONVOLUTIONS.items():
        state[f"{target}.weight"] = _kernel(variables[f"{source}/kernel"], target)
        state[f"{target}.bias"] = torch.from_numpy(variables[f"{source}/bias"].copy())
    for source, target in NORMS.items():
        for part, name in NORM_PARTS.items():
            state[f"{target}.{name}"] = torch.from_numpy(variables[f"{source}/{part}"].copy())
        state[f"{target}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    for source, target in DENSE.items():
        state[f"{target}.weight"] = torch.from_numpy(variables[f"{source}/kernel"].T.copy())
        state[f"{target}.bias"] = torch.from_numpy(variables[f"{source}/bias"].copy())
    return state
