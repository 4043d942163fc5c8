"""MLServer's runtime: our runner behind MLServer's adaptive batcher, in each parallel worker.

Copied into the model folder as ``runtime.py`` (``implementation: runtime.GenreFeatures``).
``load`` puts this checkout first on ``sys.path`` and the main venv's packages last (the model
settings' ``parameters.extra`` say where) and builds the runner; ``predict`` gets one request,
or the merged requests of an adaptive batch, and answers ``PROBABILITIES``; MLServer splits a
batch's answer back over its requests.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse


class GenreFeatures(MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        extra: dict[str, Any] = self.settings.parameters.extra
        sys.path.insert(0, extra["repository_root"])
        sys.path.append(extra["main_site_packages"])
        from bench.peers import model

        self._model = model
        self._runner = model.load_runner(
            Path(extra["version"]), int(extra["threads"]), int(extra["max_batch_size"])
        )
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        inputs = {tensor.name: tensor for tensor in payload.inputs}
        if self._model.FEATURES not in inputs:
            raise MLServerError(f"inputs: {self._model.FEATURES} is required (FP32, [N, F])", 400)
        rows = NumpyCodec.decode_input(inputs[self._model.FEATURES])
        (probabilities,) = self._model.answer(self._runner, [rows])
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output(self._model.PROBABILITIES, probabilities)],
        )
