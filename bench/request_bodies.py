"""The request bodies every server of a run is sent: one named row, 256 dense rows, the same rows
raw for TorchServe and as Open Inference Protocol ModelInfer messages. Written to files once, so
the client processes read bytes and spend no CPU on building them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genre.inference import grpc_service_pb2
from genre.v1 import genre_pb2

BULK_ROWS = 256


def write_requests(workdir: Path, version: Path, model: str) -> dict[str, Path]:
    """Request bodies: one named row, 256 dense rows, and the same rows raw for TorchServe."""
    manifest = json.loads((version / "manifest.json").read_text())
    names = [str(n) for n in manifest["preprocessing"]["feature_names"]]
    row = np.asarray(manifest["preprocessing"]["mean"], dtype=np.float32)
    bulk = np.tile(row, (BULK_ROWS, 1))
    bodies = {
        "features-1": genre_pb2.ClassifyFeaturesRequest(
            model=genre_pb2.ModelRef(name=model),
            rows=[genre_pb2.FeatureRow(features=dict(zip(names, row.tolist(), strict=True)))],
        ).SerializeToString(),
        "features-256": genre_pb2.ClassifyFeaturesRequest(
            model=genre_pb2.ModelRef(name=model),
            dense=genre_pb2.DenseFeatures(feature_names=names, values=bulk.ravel().tolist()),
        ).SerializeToString(),
        "raw-1": row.astype("<f4").tobytes(),
        "raw-256": bulk.astype("<f4").tobytes(),
        "v2-1": v2_request(model, row[None, :]),
        "v2-256": v2_request(model, bulk),
    }
    paths = {}
    for key, body in bodies.items():
        paths[key] = workdir / f"{key}.bin"
        paths[key].write_bytes(body)
    return paths


def v2_request(model: str, rows: np.ndarray) -> bytes:
    """The same rows as an Open Inference Protocol ModelInfer: FEATURES [N, F], raw FP32."""
    request = grpc_service_pb2.ModelInferRequest(model_name=model)
    request.inputs.add(name="FEATURES", datatype="FP32", shape=list(rows.shape))
    request.raw_input_contents.append(rows.astype("<f4").tobytes())
    return bytes(request.SerializeToString())
