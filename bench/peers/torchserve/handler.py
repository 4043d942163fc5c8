"""TorchServe custom handler serving a genre-serve features checkpoint, batched.

Runs inside TorchServe's Python worker, not in genre-serve. The archive carries the version's
``manifest.json`` and ``model.safetensors`` plus ``repo_root.txt`` (this checkout), and the
handler builds the very ``FeaturesRunner`` our server builds: the same preprocessing, weights,
temperature and softmax, with the same thread count. Each request's ``data`` input is raw
little-endian float32 rows in the model's column order; the answer per request is JSON, one list
per row of ``[genre, probability]`` pairs sorted by probability.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

_runner: Any = None


def _load(model_dir: Path) -> Any:
    sys.path.insert(0, (model_dir / "repo_root.txt").read_text().strip())
    import torch
    from safetensors.torch import load_file

    from modelcore.checkpoint import Checkpoint
    from modelcore.manifest import Manifest
    from server.runner import FeaturesRunner

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))  # as server.app.configure_torch
    manifest = Manifest.from_dict(json.loads((model_dir / "manifest.json").read_text()))
    assert manifest.weights is not None, "a published version names its weights"
    checkpoint = Checkpoint(
        directory=model_dir,
        manifest=manifest,
        state_dict=load_file(str(model_dir / manifest.weights.file), device="cpu"),
    )
    runner = FeaturesRunner(checkpoint, torch.device("cpu"))
    runner.warm_up(256)
    return runner


def handle(data: list[dict[str, Any]] | None, context: Any) -> list[bytes] | None:
    global _runner
    if _runner is None:
        _runner = _load(Path(context.system_properties["model_dir"]))
    if data is None:
        return None
    width = len(_runner.feature_names)
    parts = [
        np.frombuffer(bytes(item.get("data") or item.get("body") or b""), dtype="<f4").reshape(
            -1, width
        )
        for item in data
    ]
    probabilities = _runner.run(np.concatenate(parts))
    labels = _runner.labels
    order = np.argsort(-probabilities, axis=1, kind="stable")
    answers: list[bytes] = []
    offset = 0
    for part in parts:
        rows = []
        for row in range(offset, offset + part.shape[0]):
            rows.append([[labels[i], round(float(probabilities[row, i]), 6)] for i in order[row]])
        offset += part.shape[0]
        answers.append(json.dumps(rows).encode())
    return answers
