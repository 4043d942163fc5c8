"""Runs inside .venv-triton (tritonclient needs protobuf < 7): the official Open Inference
Protocol client does what a platform would, and prints what it got as one JSON line.

Input on stdin: {"target", "model", "rows" (list of lists), "bad_datatype" (bool)}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException


def main() -> int:
    plan = json.load(sys.stdin)
    client = triton.InferenceServerClient(url=plan["target"])
    model = plan["model"]
    metadata = client.get_model_metadata(model, as_json=True)
    rows = np.array(plan["rows"], dtype=np.float32)
    features = triton.InferInput("FEATURES", list(rows.shape), "FP32")
    features.set_data_from_numpy(rows)
    result = client.infer(model, [features])
    found: dict[str, Any] = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "unknown_model_ready": client.is_model_ready("no-such-model"),
        "server": client.get_server_metadata(as_json=True),
        "metadata": metadata,
        "probabilities": result.as_numpy("PROBABILITIES").tolist(),
        "labels": [label.decode() for label in result.as_numpy("LABEL")],
        "version": result.get_response().model_version,
    }
    wrong = triton.InferInput("FEATURES", list(rows.shape), "FP64")
    wrong.set_data_from_numpy(rows.astype(np.float64))
    try:
        client.infer(model, [wrong])
        found["bad_datatype"] = None
    except InferenceServerException as error:
        found["bad_datatype"] = {"status": error.status(), "message": error.message()}
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
