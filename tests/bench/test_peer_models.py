"""The peers' model code answers as our server does, without Triton or MLServer around it.

Triton's Python backend and MLServer's runtime run inside venvs no test builds; a change to the
runner, the checkpoint API or the parameters the harness writes would otherwise surface only in
a benchmark run (as it once did for TorchServe's handler). Here each adapter loads the real
``gtzan-features-mlp`` version the way its peer hands it over and answers a batch of two
requests, which must match what a real ``python -m server`` answers the same v2 request body.
Triton's ``triton_python_backend_utils`` and MLServer's package are replaced by small fakes of
the few names the adapters use: the parts that cannot run here.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest
from google.protobuf import text_format

from bench.endpoints import MODEL_INFER
from bench.peers import model
from bench.peers.base import PeerSettings, model_parameters
from bench.peers.mlserver import MLServer
from bench.peers.triton import model_config
from bench.request_bodies import v2_request
from bench.server_process import start_server_process
from genre.inference import grpc_service_pb2 as v2
from genre.inference import model_config_pb2
from tests.conftest import REPOSITORY_ROOT

NAME = "gtzan-features-mlp"
VERSION = REPOSITORY_ROOT / "models" / NAME / "1"
Rows = npt.NDArray[np.float32]


def real_rows(count: int = 5) -> Rows:
    """Rows around the training distribution (the manifest's raw-scale means, jittered)."""
    manifest = json.loads((VERSION / "manifest.json").read_text())
    mean = np.asarray(manifest["preprocessing"]["mean"], dtype=np.float32)
    noise = np.random.default_rng(0).normal(1.0, 0.1, size=(count, mean.size))
    return (mean * noise).astype(np.float32)


@pytest.fixture(scope="module")
def served() -> tuple[Rows, Rows]:
    """Rows, and the probabilities a real server answers for them over the v2 protocol."""
    rows = real_rows()
    server = start_server_process(REPOSITORY_ROOT / "models", {"GENRE_MODELS": NAME})
    try:
        with grpc.insecure_channel(server.target) as channel:
            infer = channel.unary_unary(
                MODEL_INFER, request_serializer=None, response_deserializer=None
            )
            response = v2.ModelInferResponse.FromString(infer(v2_request(NAME, rows), timeout=30))
    finally:
        assert server.stop() == 0
    index = [output.name for output in response.outputs].index(model.PROBABILITIES)
    raw = response.raw_output_contents[index]
    return rows, np.frombuffer(raw, dtype="<f4").reshape(rows.shape[0], -1)


def settings(tmp_path: Path) -> PeerSettings:
    bodies = {"features-1": tmp_path / "v2-1.bin"}
    return PeerSettings(tmp_path, VERSION, NAME, bodies, max_batch_size=256, max_queue_delay_ms=5)


def test_the_shared_model_code_answers_each_request_of_a_batch(served: tuple[Rows, Rows]) -> None:
    rows, expected = served
    runner = model.load_runner(VERSION, threads=1)

    first, rest = model.answer(runner, [rows[:1], rows[1:].ravel()])

    assert (first.shape, rest.shape) == ((1, expected.shape[1]), (4, expected.shape[1]))
    np.testing.assert_allclose(np.concatenate([first, rest]), expected, atol=1e-6)


@dataclass
class FakeTensor:
    name: str
    array: Rows

    def as_numpy(self) -> Rows:
        return self.array


def fake_triton_utils() -> ModuleType:
    utils = ModuleType("triton_python_backend_utils")
    utils.Tensor = FakeTensor  # type: ignore[attr-defined]
    utils.InferenceResponse = lambda output_tensors: SimpleNamespace(outputs=output_tensors)  # type: ignore[attr-defined]
    utils.get_input_tensor_by_name = lambda request, name: FakeTensor(name, request[name])  # type: ignore[attr-defined]
    return utils


def test_triton_backend_answers_a_dynamic_batch_as_our_server(
    served: tuple[Rows, Rows], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, expected = served
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake_triton_utils())
    monkeypatch.delitem(sys.modules, "bench.peers.triton.backend", raising=False)
    backend = importlib.import_module("bench.peers.triton.backend")
    config = model_config(NAME, rows.shape[1], expected.shape[1], 2, 256, 5.0,
                          model_parameters(settings(tmp_path), workers=2))  # fmt: skip
    parsed = text_format.Parse(config, model_config_pb2.ModelConfig())  # Triton's own schema
    as_triton_passes_it = {"model_config": json.dumps(
        {"parameters": {k: {"string_value": v.string_value} for k, v in parsed.parameters.items()}}
    )}  # fmt: skip

    served_model = backend.TritonPythonModel()
    served_model.initialize(as_triton_passes_it)
    responses = served_model.execute([{"FEATURES": rows[:2]}, {"FEATURES": rows[2:]}])

    assert [len(r.outputs) for r in responses] == [1, 1]
    assert {r.outputs[0].name for r in responses} == {"PROBABILITIES"}
    got = np.concatenate([r.outputs[0].array for r in responses])
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_triton_config_sets_the_batcher_and_instances_as_ours() -> None:
    text = model_config(NAME, 57, 10, instances=2, max_batch_size=256, max_queue_delay_ms=5.0,
                        parameters={"threads": "1"})  # fmt: skip

    parsed = text_format.Parse(text, model_config_pb2.ModelConfig())

    assert (parsed.name, parsed.backend, parsed.max_batch_size) == (NAME, "python", 256)
    assert parsed.dynamic_batching.max_queue_delay_microseconds == 5000
    assert [(g.count, g.kind) for g in parsed.instance_group] == [
        (2, model_config_pb2.ModelInstanceGroup.KIND_CPU)
    ]
    assert [(i.name, list(i.dims)) for i in parsed.input] == [("FEATURES", [57])]
    assert [(o.name, list(o.dims)) for o in parsed.output] == [("PROBABILITIES", [10])]
    assert parsed.parameters["threads"].string_value == "1"


class FakeMLModel:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.name, self.version = settings.name, "1"


def fake_mlserver() -> dict[str, ModuleType]:
    root, codecs, errors, types = (
        ModuleType(f"mlserver{s}") for s in ("", ".codecs", ".errors", ".types")
    )
    root.MLModel = FakeMLModel  # type: ignore[attr-defined]
    codecs.NumpyCodec = SimpleNamespace(  # type: ignore[attr-defined]
        decode_input=lambda tensor: tensor.data,
        encode_output=lambda name, array: SimpleNamespace(name=name, data=array),
    )
    errors.MLServerError = RuntimeError  # type: ignore[attr-defined]
    types.InferenceRequest = types.InferenceResponse = SimpleNamespace  # type: ignore[attr-defined]
    modules = (root, codecs, errors, types)
    return {module.__name__: module for module in modules}


async def test_mlserver_runtime_answers_as_our_server_with_the_settings_written(
    served: tuple[Rows, Rows], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, expected = served
    for name, module in fake_mlserver().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "bench.peers.mlserver.runtime", raising=False)
    runtime = importlib.import_module("bench.peers.mlserver.runtime")
    root = MLServer(settings(tmp_path)).write_settings(workers=2, ports=[1, 2, 3])
    server_settings = json.loads((root / "settings.json").read_text())
    written = json.loads((root / "models" / NAME / "model-settings.json").read_text())
    as_mlserver_passes_it = SimpleNamespace(
        name=written["name"], parameters=SimpleNamespace(extra=written["parameters"]["extra"])
    )

    served_model = runtime.GenreFeatures(as_mlserver_passes_it)
    assert await served_model.load() is True
    request = SimpleNamespace(inputs=[SimpleNamespace(name="FEATURES", data=rows)])
    response = await served_model.predict(request)

    assert (server_settings["parallel_workers"], server_settings["grpc_port"]) == (2, 2)
    assert (written["max_batch_size"], written["max_batch_time"]) == (256, 0.005)
    assert written["implementation"] == "runtime.GenreFeatures"
    assert (root / "models" / NAME / "runtime.py").exists()
    assert [output.name for output in response.outputs] == ["PROBABILITIES"]
    np.testing.assert_allclose(response.outputs[0].data, expected, atol=1e-6)
    with pytest.raises(RuntimeError, match="FEATURES is required"):
        await served_model.predict(SimpleNamespace(inputs=[]))
