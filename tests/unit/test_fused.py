"""The fused ensemble computes what the module it was fused from computes."""

from __future__ import annotations

import pytest
import torch

from modelcore.models import build_model
from server.compute.fused import fuse, matches


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
