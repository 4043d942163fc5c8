"""The official ``tritonclient`` (gRPC) talks to genre-serve unmodified.

It runs in ``.venv-triton`` (it needs protobuf < 7; ``make test`` builds that venv) against a real
``python -m server`` process, through ``tests/support/triton_probe.py``, and its answers are
compared with genre.v1's for the same rows.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from genre.v1 import genre_pb2, genre_pb2_grpc
from modelcore.checkpoint import list_versions, load_checkpoint
from tests.conftest import REPOSITORY_ROOT
from tests.support.checkpoints import (
    FEATURE_NAMES,
    LABELS,
    TINY_FRONTEND,
    example_row,
    write_tiny_audio_model,
    write_tiny_model,
)
from tests.support.harness import ServerProcess, start_server_process
from tests.support.streams import float_clip_requests, in_label_order
from tests.support.synthetic_audio import synth_clip

TRITON_PYTHON = REPOSITORY_ROOT / ".venv-triton" / "bin" / "python"
MODELS = REPOSITORY_ROOT / "models"
PROBE = REPOSITORY_ROOT / "tests" / "support" / "triton_probe.py"
ROWS = [[example_row(tempo=t)[name] for name in FEATURE_NAMES] for t in (90.0, 128.0, 170.0)]
RATE = TINY_FRONTEND.sample_rate
CLIPS = [synth_clip("metal", 1.0, RATE, seed=1), synth_clip("classical", 1.0, RATE, seed=2)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if not TRITON_PYTHON.exists():
        pytest.skip("tritonclient not installed: `make .venv-triton/.installed`")
    repository = tmp_path_factory.mktemp("triton") / "models"
    write_tiny_model(repository, seed=1)
    write_tiny_model(repository, seed=2)
    write_tiny_audio_model(repository)
    process = start_server_process(repository)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def found(server: ServerProcess) -> dict[str, Any]:
    """What tritonclient got from the tiny models' server, asked once for the module."""
    return run_probe(
        {
            "target": server.target,
            "model": "tiny-mlp",
            "rows": ROWS,
            "audio_model": "tiny-audio",
            "rate": RATE,
            "clips": [clip.tolist() for clip in CLIPS],
        }
    )


def run_probe(plan: dict[str, Any]) -> dict[str, Any]:
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


def test_tritonclient_checks_health_and_reads_metadata(found: dict[str, Any]) -> None:
    assert (found["live"], found["ready"], found["model_ready"]) == (True, True, True)
    assert found["unknown_model_ready"] is False
    assert found["server"]["name"] == "genre-serve"
    metadata = found["metadata"]
    assert metadata["name"] == "tiny-mlp"
    assert metadata["versions"] == ["1", "2"]
    assert found["config"]["name"] == "tiny-mlp"
    assert [i["name"] for i in found["config"]["input"]] == ["FEATURES", "FEATURE_NAMES"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]] == [
        ("FEATURES", "FP32", ["-1", str(len(FEATURE_NAMES))]),
        ("FEATURE_NAMES", "BYTES", [str(len(FEATURE_NAMES))]),
    ]


def test_tritonclient_infers_what_genre_v1_answers(
    server: ServerProcess, found: dict[str, Any]
) -> None:
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


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("bad_datatype", "INVALID_ARGUMENT", "FEATURES: datatype must be FP32, got 'FP64'"),
        ("unknown_input", "INVALID_ARGUMENT", "inputs: unknown input 'SCORES'"),
        ("unknown_model", "NOT_FOUND", "model_name: no model 'no-such-model' is served"),
    ],
)
def test_tritonclient_sees_bad_requests_with_a_precise_status(
    found: dict[str, Any], case: str, status: str, message: str
) -> None:
    refused = found[case]
    assert refused is not None, f"{case} was accepted"
    assert refused["status"] == f"StatusCode.{status}"
    assert message in refused["message"]


def statistics_of(found: dict[str, Any], version: str) -> dict[str, int]:
    """Some of Triton's fields for one version, from tritonclient's JSON (zeros are left out)."""
    (stats,) = [s for s in found["statistics"] if s["version"] == version]
    figures = {key: int(stats.get(key, 0)) for key in ("inference_count", "execution_count")}
    for kind in ("success", "fail", "queue", "compute_infer"):
        figures[kind] = int(stats.get("inference_stats", {}).get(kind, {}).get("count", 0))
    return figures


def test_tritonclient_reads_each_versions_statistics(found: dict[str, Any]) -> None:
    """The probe's calls to tiny-mlp: one infer of three rows (the default version, 2) and two
    refused; version 1 was never called. The unknown model's call counts for no model."""
    assert [(s["name"], s["version"]) for s in found["statistics"]] == [
        ("tiny-mlp", "1"),
        ("tiny-mlp", "2"),
    ]
    assert statistics_of(found, "2") == {
        "inference_count": 3,
        "execution_count": 1,
        "success": 1,
        "fail": 2,
        "queue": 1,
        "compute_infer": 1,
    }
    assert set(statistics_of(found, "1").values()) == {0}


def v1_stream(
    server: ServerProcess, clip: np.ndarray
) -> list[genre_pb2.ClassifyAudioStreamResponse]:
    with grpc.insecure_channel(server.target) as channel:
        stub = genre_pb2_grpc.GenreClassifierStub(channel)
        return list(stub.ClassifyAudioStream(iter(float_clip_requests(clip)), timeout=30))


def test_tritonclient_classifies_a_clip_and_streams_sequences(
    server: ServerProcess, found: dict[str, Any]
) -> None:
    references = [v1_stream(server, clip) for clip in CLIPS]
    np.testing.assert_allclose(
        found["clip_probabilities"], in_label_order(references[0][-1].track), atol=1e-6
    )
    assert not [answer for answer in found["stream"] if "error" in answer]
    for key, reference in enumerate(references, start=1):
        ours = [answer for answer in found["stream"] if answer["sequence_id"] == str(key)]
        assert [answer["final"] for answer in ours] == [reply.final for reply in reference]
        for answer, reply in zip(ours, reference, strict=True):
            expected = reply.track if reply.final else reply.window
            np.testing.assert_allclose(answer["probabilities"], in_label_order(expected), atol=1e-6)


def test_tritonclient_talks_to_make_serve_unmodified() -> None:
    """The bundled models, the default worker count (what `make serve` starts), both kinds."""
    if not TRITON_PYTHON.exists():
        pytest.skip("tritonclient not installed: `make .venv-triton/.installed`")
    features = load_checkpoint(latest(MODELS / "gtzan-features-mlp")).manifest
    audio = load_checkpoint(latest(MODELS / "gtzan-cnn-lstm")).manifest
    rate = int(audio.frontend["sample_rate"])
    mean = np.asarray(features.preprocessing["mean"], dtype=np.float32)
    clips = [synth_clip(genre, 4.0, rate, seed=3) for genre in ("metal", "classical")]
    server = start_server_process(None, {"GENRE_WORKERS": ""}, timeout=300)
    try:
        plan = {
            "target": server.target,
            "model": "gtzan-features-mlp",
            "rows": np.stack([mean, mean * 1.1]).tolist(),
            "audio_model": "gtzan-cnn-lstm",
            "rate": rate,
            "clips": [clip.tolist() for clip in clips],
        }
        found = run_probe(plan)
    finally:
        server.stop()
    assert (found["live"], found["ready"], found["model_ready"]) == (True, True, True)
    assert len(found["probabilities"]) == 2
    assert found["labels"][0] in features.labels
    assert not [answer for answer in found["stream"] if "error" in answer]
    finals = [answer for answer in found["stream"] if answer["final"]]
    assert sorted(answer["sequence_id"] for answer in finals) == ["1", "2"]
    assert len(found["clip_probabilities"]) == len(audio.labels)
    # Several workers: the answer counts the infer whichever worker served it.
    counted = statistics_of(found, found["version"])
    assert (counted["inference_count"], counted["success"]) == (2, 1)


def latest(model: Path) -> Path:
    return model / str(max(list_versions(model)))
