"""The TorchServe handler answers as our server does, without TorchServe around it.

The benchmark's TorchServe peer runs this handler inside TorchServe's worker, which no test
starts (it needs a Java runtime and its own venv); a change to the checkpoint or manifest API
once broke it unnoticed until a benchmark run. Here it loads a real version directory the way
TorchServe hands it over and answers a two-request batch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

import bench.peers.torchserve.handler as handler
from modelcore.checkpoint import load_checkpoint
from server.runner import FeaturesRunner
from tests.conftest import REPOSITORY_ROOT
from tests.support.checkpoints import write_tiny_model


def test_the_handler_serves_a_batch_as_the_features_runner_does(tmp_path: Path) -> None:
    version = write_tiny_model(tmp_path / "models")
    model_dir = tmp_path / "archive"  # what TorchServe unpacks: the files, flat
    model_dir.mkdir()
    for name in ("manifest.json", "model.safetensors"):
        shutil.copy(version / name, model_dir / name)
    (model_dir / "repo_root.txt").write_text(str(REPOSITORY_ROOT))
    runner = FeaturesRunner(load_checkpoint(version), torch.device("cpu"))
    rows = np.random.default_rng(0).normal(size=(3, len(runner.feature_names))).astype("<f4")
    context = SimpleNamespace(system_properties={"model_dir": str(model_dir)})
    handler._runner = None
    try:
        answers = handler.handle(
            [{"data": rows[:1].tobytes()}, {"body": rows[1:].tobytes()}], context
        )
    finally:
        handler._runner = None
    assert answers is not None
    decoded = [json.loads(answer) for answer in answers]
    assert [len(part) for part in decoded] == [1, 2]
    expected = runner.run(rows)
    for row, scores in enumerate(decoded[0] + decoded[1]):
        got = dict(scores)
        np.testing.assert_allclose(
            [got[label] for label in runner.labels], expected[row], atol=1e-5
        )
