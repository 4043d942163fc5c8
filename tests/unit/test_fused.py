"""The fused ensemble computes what the module it was fused from computes."""

from __future__ import annotations

import pytest
import torch

from modelcore.models import build_model
from server.compute.fused import FusedMLPEnsemble, fuse, fuse_children, matches


@pytest.mark.parametrize("members", [1, 4])
def test_fused_ensemble_matches_the_original(members: int) -> None:
    torch.manual_seed(0)
    params = {"input_dim": 7, "num_classes": 5, "hidden_sizes": [16, 8], "dropout": 0.1}
    architecture = (
        {"type": "mlp", "params": params}
        if members == 1
        else {"type": "mlp_ensemble", "params": {**params, "members": members}}
    )
    model = build_model(architecture)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                assert module.running_var is not None
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
    model.eval()
    fused = fuse(model)
    assert fused is not None
    assert matches(model, fused, 7, torch.device("cpu"))
    assert not matches(build_model(architecture).eval(), fused, 7, torch.device("cpu"))


class _Wrapper(torch.nn.Module):
    """A composite holding a composite that holds an MLP ensemble, as a title blend holds an
    MLP and trees blend."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = torch.nn.ModuleDict({"mlp": inner, "scale": torch.nn.Identity()})

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        scaled: torch.Tensor = self.inner["scale"](self.inner["mlp"](features))
        return scaled


def test_fusing_children_reaches_an_ensemble_nested_in_composites() -> None:
    torch.manual_seed(0)
    params = {"input_dim": 7, "num_classes": 5, "hidden_sizes": [16], "dropout": 0.0}
    ensemble = build_model({"type": "mlp_ensemble", "params": {**params, "members": 3}}).eval()
    model = _Wrapper(ensemble).eval()
    inputs = torch.randn(9, 7)
    with torch.inference_mode():
        expected = model(inputs)
    fuse_children(model, 7, torch.device("cpu"))
    assert isinstance(model.inner["mlp"], FusedMLPEnsemble)
    with torch.inference_mode():
        assert torch.allclose(model(inputs), expected, rtol=1e-4, atol=1e-5)
