"""The official ``tritonclient`` (gRPC) talks to genre-serve unmodified.

It runs in ``.venv-triton`` (it needs protobuf < 7; ``make test`` builds that venv) against a real
``python -m server`` process, through ``tests/support/triton_probe.py``, and its answers are
compared with genre.v1's for the same rows.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from genre.v1 import genre_pb2, genre_pb2_grpc
from tests.conftest import REPOSITORY_ROOT
from tests.support.checkpoints import FEATURE_NAMES, LABELS, example_row, write_tiny_model
from tests.support.harness import ServerProcess, start_server_process

TRITON_PYTHON = REPOSITORY_ROOT / ".venv-triton" / "bin" / "python"
PROBE = REPOSITORY_ROOT / "tests" / "support" / "triton_probe.py"
ROWS = [[example_row(tempo=t)[name] for name in FEATURE_NAMES] for t in (90.0, 128.0, 170.0)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if not TRITON_PYTHON.exists():
        pytest.skip("tritonclient not installed: `make .venv-triton/.installed`")
    repository = tmp_path_factory.mktemp("triton") / "models"
    write_tiny_model(repository, seed=1)
    write_tiny_model(repository, seed=2)
    process = start_server_process(repository)
    try:
        yield process
    finally:
        process.stop()


def probe(server: ServerProcess) -> dict[str, Any]:
    plan = {"target": server.target, "model": "tiny-mlp", "rows": ROWS}
    done = subprocess.run(
        [str(TRITON_PYTHON), str(PROBE)],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_tritonclient_checks_health_and_reads_metadata(server: ServerProcess) -> None:
    found = probe(server)
    assert (found["live"], found["ready"], found["model_ready"]) == (True, True, True)
    assert found["unknown_model_ready"] is False
    assert found["server"]["name"] == "genre-serve"
    metadata = found["metadata"]
    assert metadata["name"] == "tiny-mlp"
    assert metadata["versions"] == ["1", "2"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]] == [
        ("FEATURES", "FP32", ["-1", str(len(FEATURE_NAMES))]),
        ("FEATURE_NAMES", "BYTES", [str(len(FEATURE_NAMES))]),
    ]


def test_tritonclient_infers_what_genre_v1_answers(server: ServerProcess) -> None:
    found = probe(server)
    with grpc.insecure_channel(server.target) as channel:
        reply = genre_pb2_grpc.GenreClassifierStub(channel).ClassifyFeatures(
            genre_pb2.ClassifyFeaturesRequest(
                model=genre_pb2.ModelRef(name="tiny-mlp"),
                dense=genre_pb2.DenseFeatures(
                    feature_names=FEATURE_NAMES, values=np.ravel(ROWS).tolist()
                ),
            ),
            timeout=10,
        )
    expected = [
        [{s.genre: s.probability for s in result.scores}[genre] for genre in LABELS]
        for result in reply.results
    ]
    np.testing.assert_allclose(found["probabilities"], expected, atol=1e-6)
    assert found["labels"] == [LABELS[int(i)] for i in np.argmax(expected, axis=1)]
    assert found["version"] == "2"


def test_tritonclient_sees_a_wrong_datatype_as_invalid_argument(server: ServerProcess) -> None:
    refused = probe(server)["bad_datatype"]
    assert refused is not None, "an FP64 FEATURES tensor was accepted"
    assert refused["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "FEATURES: datatype must be FP32, got 'FP64'" in refused["message"]
