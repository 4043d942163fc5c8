"""Runs inside .venv-triton (tritonclient needs protobuf < 7): the official Open Inference
Protocol client does what a platform would, and prints what it got as one JSON line.

Input on stdin: {"target", "model", "rows" (list of lists), "audio_model", "rate", "clips"
(two lists of samples in -1..1)}.
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
        "config": client.get_model_config(model, as_json=True)["config"],
        "probabilities": result.as_numpy("PROBABILITIES").tolist(),
        "labels": [label.decode() for label in result.as_numpy("LABEL")],
        "version": result.get_response().model_version,
    }
    wrong_type = triton.InferInput("FEATURES", list(rows.shape), "FP64")
    wrong_type.set_data_from_numpy(rows.astype(np.float64))
    unknown_input = triton.InferInput("SCORES", list(rows.shape), "FP32")
    unknown_input.set_data_from_numpy(rows)
    for key, name, tensors in (
        ("bad_datatype", model, [wrong_type]),
        ("unknown_input", model, [unknown_input]),
        ("unknown_model", "no-such-model", [features]),
    ):
        try:
            client.infer(name, tensors)
            found[key] = None
        except InferenceServerException as error:
            found[key] = {"status": error.status(), "message": error.message()}
    found.update(audio(client, plan))
    # Last, so it counts every call above (Triton's JSON: uint64 as strings, zeros left out).
    found["statistics"] = client.get_inference_statistics(model, as_json=True)["model_stats"]
    print(json.dumps(found))
    return 0


def audio_input(samples: np.ndarray) -> Any:
    tensor = triton.InferInput("AUDIO", [1, samples.size], "FP32")
    tensor.set_data_from_numpy(samples.reshape(1, -1).astype(np.float32))
    return tensor


def audio(client: Any, plan: dict[str, Any]) -> dict[str, Any]:
    """A whole clip through infer, then the two clips as interleaved sequences on one stream."""
    model, rate = plan["audio_model"], plan["rate"]
    clips = [np.array(clip, dtype=np.float32) for clip in plan["clips"]]
    whole = client.infer(model, [audio_input(clips[0])], parameters={"sample_rate": rate})
    answers: list[dict[str, Any]] = []

    def collect(result: Any, error: Any) -> None:
        if error is not None:
            answers.append({"error": str(error)})
            return
        parameters = result.get_response().parameters
        answers.append(
            {
                "sequence_id": parameters["sequence_id"].string_param,
                "final": parameters["final"].bool_param,
                "start": parameters["window_start_seconds"].double_param,
                "probabilities": result.as_numpy("PROBABILITIES")[0].tolist(),
            }
        )

    client.start_stream(callback=collect)
    halves = [np.array_split(clip, 2) for clip in clips]
    for part in (0, 1):
        for index, pieces in enumerate(halves):
            client.async_stream_infer(
                model,
                [audio_input(pieces[part])],
                sequence_id=index + 1,
                sequence_start=part == 0,
                sequence_end=part == 1,
                parameters={"sample_rate": rate} if part == 0 else None,
            )
    client.stop_stream()
    return {"clip_probabilities": whole.as_numpy("PROBABILITIES")[0].tolist(), "stream": answers}


if __name__ == "__main__":
    sys.exit(main())
