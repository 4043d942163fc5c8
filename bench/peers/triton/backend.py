"""Triton's Python backend model: our runner behind Triton's dynamic batcher.

Copied into the model repository as ``<model>/1/model.py`` and run by Triton's stub process,
one per model instance. ``initialize`` puts this checkout first on ``sys.path`` and the main
venv's packages last (the parameters of ``config.pbtxt`` say where) and builds the runner;
``execute`` gets every request of one dynamic batch, runs them in one forward pass and answers
each with its own rows' ``PROBABILITIES``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config["parameters"].items()}
        sys.path.insert(0, parameters["repository_root"])
        sys.path.append(parameters["main_site_packages"])
        from bench.peers import model

        self._model = model
        self._runner = model.load_runner(
            Path(parameters["version"]),
            int(parameters["threads"]),
            int(parameters["max_batch_size"]),
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        name = self._model.FEATURES
        parts = [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for r in requests]
        return [
            pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor(self._model.PROBABILITIES, probabilities)]
            )
            for probabilities in self._model.answer(self._runner, parts)
        ]
