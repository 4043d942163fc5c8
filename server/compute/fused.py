"""Inference-only fusion of MLPs and MLP ensembles: fewer, larger kernels, same outputs.

An ensemble of M MLPs run member by member launches about 5 small kernels per layer per member;
at batch 1 that overhead, not arithmetic, is the cost. Fused, BatchNorm is folded into the
preceding Linear (eval statistics are constants), the first layer of every member becomes one
GEMM over the concatenated weights, and each later layer one batched matmul over the members.
``fuse`` returns None for any module it does not understand, and the runner keeps a fused model
only when it reproduces the original's outputs (``matches``).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from modelcore.models.ensemble import MLPEnsemble
from modelcore.models.mlp import ACTIVATIONS, MLPClassifier


class _NotFusable(Exception):
    pass


def _member_layers(member: MLPClassifier) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], type]:
    """Each Linear of ``member`` with BatchNorm folded in, as (weight (in, out), bias (out,))."""
    layers: list[tuple[torch.Tensor, torch.Tensor]] = []
    activation: type | None = None
    for module in member.body:
        if isinstance(module, nn.Linear):
            bias = (
                module.bias
                if module.bias is not None
                else module.weight.new_zeros(module.out_features)
            )
            layers.append((module.weight.detach().t().clone(), bias.detach().clone()))
        elif isinstance(module, nn.BatchNorm1d) and layers:
            assert module.running_mean is not None
            assert module.running_var is not None
            scale: torch.Tensor = torch.rsqrt(module.running_var + module.eps)
            if module.affine:
                scale = scale * module.weight.detach()
            shift: torch.Tensor = -module.running_mean * scale
            if module.affine:
                shift = shift + module.bias.detach()
            folded_weight, folded_bias = layers[-1]
            layers[-1] = (folded_weight * scale, folded_bias * scale + shift)
        elif isinstance(module, nn.Dropout):
            continue
        elif type(module) in ACTIVATIONS.values():
            if activation not in (None, type(module)):
                raise _NotFusable("mixed activations")
            activation = type(module)
        else:
            raise _NotFusable(f"unexpected module {type(module).__name__}")
    head = member.head
    layers.append((head.weight.detach().t().clone(), head.bias.detach().clone()))
    if activation is None:
        raise _NotFusable("no activation")
    return layers, activation


class FusedMLPEnsemble(nn.Module):
    """(B, F) standardised features -> (B, C): logits for one MLP, log mean probabilities for M.

    Built from modules already on their device; it is not meant to be moved with ``.to()``.
    """

    def __init__(self, members: list[MLPClassifier], average: bool) -> None:
        super().__init__()
        per_member = [_member_layers(member) for member in members]
        activations = {activation for _, activation in per_member}
        if len(activations) != 1:
            raise _NotFusable("members differ in activation")
        self.activation = activations.pop()()
        self.count = len(members)
        self.average = average
        first = [layers[0] for layers, _ in per_member]
        self.hidden = first[0][0].shape[1]
        self.first_weight = torch.cat([w for w, _ in first], dim=1)
        self.first_bias = torch.cat([b for _, b in first])
        depth = len(per_member[0][0])
        if depth < 2:
            raise _NotFusable("no hidden layer")
        self.weights = [
            torch.stack([layers[i][0] for layers, _ in per_member]) for i in range(1, depth)
        ]
        self.biases = [
            torch.stack([layers[i][1] for layers, _ in per_member]).unsqueeze(1)
            for i in range(1, depth)
        ]

    def cast(self, dtype: torch.dtype) -> FusedMLPEnsemble:
        """A copy computing in ``dtype`` (inputs must be given in it; outputs come back in it)."""
        twin = copy.copy(self)
        twin.first_weight = self.first_weight.to(dtype)
        twin.first_bias = self.first_bias.to(dtype)
        twin.weights = [weight.to(dtype) for weight in self.weights]
        twin.biases = [bias.to(dtype) for bias in self.biases]
        return twin

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch = features.shape[0]
        hidden = torch.addmm(self.first_bias, features, self.first_weight)
        hidden = self.activation(hidden).view(batch, self.count, self.hidden).transpose(0, 1)
        last = len(self.weights) - 1
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            hidden = torch.baddbmm(bias, hidden, weight)
            if index < last:
                hidden = self.activation(hidden)
        if not self.average:
            return hidden[0]
        # (M, B, C) -> (M, C, B): on the CPU, log_softmax over a short last dimension (the ten
        # classes) ran ~25x slower than over a middle one (310 vs 12 µs for 256 rows x 10).
        per_class = torch.log_softmax(hidden.float().transpose(1, 2).contiguous(), dim=1)
        return (torch.logsumexp(per_class, dim=0) - math.log(self.count)).t()


def fuse(model: nn.Module) -> FusedMLPEnsemble | None:
    """The fused equivalent of an ``MLPClassifier`` or ``MLPEnsemble``; None if not fusable."""
    try:
        if isinstance(model, MLPEnsemble):
            return FusedMLPEnsemble(list(model.members), average=True)  # type: ignore[arg-type]
        if isinstance(model, MLPClassifier):
            return FusedMLPEnsemble([model], average=False)
    except _NotFusable:
        return None
    return None


def fuse_children(model: nn.Module, width: int, device: torch.device) -> None:
    """Swaps each MLP (or MLP ensemble) inside a composite model, at any depth (an MLP and
    trees blend, or that blend as a title blend's numeric part), for its fused twin where that
    reproduces its outputs on ``width`` columns; the composite itself cannot be fused as a
    whole. A child that is not an MLP is searched in turn; one that is, but whose fused twin
    differs, is left as it is."""
    for name, child in list(model.named_children()):
        fused = fuse(child)
        if fused is None:
            fuse_children(child, width, device)
        elif matches(child, fused, width, device):
            setattr(model, name, fused)


def matches(original: nn.Module, fused: nn.Module, width: int, device: torch.device) -> bool:
    """Whether ``fused`` gives ``original``'s outputs on random inputs at a few batch sizes."""
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for batch in (1, 7, 64):
            inputs = torch.randn(batch, width, generator=generator).to(device)
            try:
                expected, actual = original(inputs), fused(inputs)
            except RuntimeError:
                return False
            if expected.shape != actual.shape or not torch.allclose(
                expected, actual, rtol=1e-4, atol=1e-5
            ):
                return False
    return True
