"""A track's title as an optional input (#25), over genre.v1 and the Open Inference Protocol, on
a real server: present, absent, empty, too long, not UTF-8, unknown, and on a model without
text features. A row without a title gets exactly the numeric answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from genre.inference import grpc_service_pb2 as v2
from genre.inference import grpc_service_pb2_grpc as v2_grpc
from genre.v1 import genre_pb2, genre_pb2_grpc
from modelcore.checkpoint import load_checkpoint
from modelcore.models import build_model
from modelcore.preprocessing import FeaturePreprocessor
from server.app import App, create_server
from server.oip.tensors import raw_bytes
from tests.support.checkpoints import (
    FEATURE_NAMES,
    LABELS,
    TITLE_LENGTH,
    TITLES,
    example_row,
    write_tiny_model,
    write_tiny_titled_model,
)
from tests.support.harness import loopback_config

Stubs = tuple[  # the async stub types exist in the generated .pyi only
    "genre_pb2_grpc.GenreClassifierAsyncStub", "v2_grpc.GRPCInferenceServiceAsyncStub"
]
CLASSIFY = "/genre.v1.GenreClassifier/ClassifyFeatures"
ROWS = [example_row(tempo=tempo) for tempo in (90.0, 128.0, 170.0)]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Stubs, grpc.aio.Channel, Path]]:
    repository = tmp_path / "models"
    titled = write_tiny_titled_model(repository)
    write_tiny_model(repository, "tiny-mlp", seed=1)
    app: App = await create_server(loopback_config(repository))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stubs = (
                genre_pb2_grpc.GenreClassifierStub(channel),
                v2_grpc.GRPCInferenceServiceStub(channel),
            )
            yield stubs, channel, titled
    finally:
        await app.drain(grace=1.0)


def v1_request(
    titles: list[str | None], model: str = "tiny-titled"
) -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name=model),
        rows=[
            genre_pb2.FeatureRow(features=row, text={} if title is None else {"title": title})
            for row, title in zip(ROWS, titles, strict=True)
        ],
    )


def v1_answers(response: genre_pb2.ClassifyFeaturesResponse) -> np.ndarray:
    """(N, C) probabilities in ``LABELS`` order."""
    return np.array(
        [
            [{s.genre: s.probability for s in result.scores}[label] for label in LABELS]
            for result in response.results
        ],
        dtype=np.float32,
    )


def v2_request(titles: list[str] | None, model: str = "tiny-titled") -> v2.ModelInferRequest:
    matrix = np.array([[row[name] for name in FEATURE_NAMES] for row in ROWS], dtype="<f4")
    request = v2.ModelInferRequest(model_name=model)
    request.inputs.add(name="FEATURES", datatype="FP32", shape=list(matrix.shape))
    request.raw_input_contents.append(matrix.tobytes())
    if titles is not None:
        request.inputs.add(name="TITLE", datatype="BYTES", shape=[len(titles)])
        request.raw_input_contents.append(raw_bytes(titles))
    return request


def v2_answers(response: v2.ModelInferResponse) -> np.ndarray:
    raw = dict(zip((t.name for t in response.outputs), response.raw_output_contents, strict=True))
    return np.frombuffer(raw["PROBABILITIES"], dtype="<f4").reshape(len(ROWS), -1)


def expected(titled: Path, titles: list[str]) -> np.ndarray:
    """What the checkpoint itself says, computed here without the server."""
    checkpoint = load_checkpoint(titled)
    model = build_model(checkpoint.manifest.architecture)
    model.load_state_dict(checkpoint.state_dict)
    preprocessor = FeaturePreprocessor.from_dict(checkpoint.manifest.preprocessing)
    feature = preprocessor.text_features[0]
    matrix = np.array(
        [
            [*(row[name] for name in FEATURE_NAMES), *feature.encode(title)]
            for row, title in zip(ROWS, titles, strict=True)
        ],
        dtype=np.float32,
    )
    with torch.inference_mode():
        logits = model.eval()(torch.from_numpy(preprocessor.transform(matrix)))
    return torch.softmax(logits / checkpoint.manifest.temperature, dim=1).numpy()


async def test_a_title_moves_the_answer_and_rows_without_one_get_the_numeric_answer(
    served: tuple[Stubs, grpc.aio.Channel, Path],
) -> None:
    (v1, _), _, titled = served
    with_titles = v1_answers(await v1.ClassifyFeatures(v1_request([TITLES[0], None, TITLES[1]])))
    without = v1_answers(await v1.ClassifyFeatures(v1_request([None, None, None])))
    np.testing.assert_allclose(with_titles, expected(titled, [TITLES[0], "", TITLES[1]]), atol=1e-6)
    assert np.array_equal(with_titles[1], without[1])  # bit for bit: the text member skipped
    assert not np.allclose(with_titles[0], without[0], atol=1e-3)
    assert not np.allclose(with_titles[2], without[2], atol=1e-3)


async def test_an_empty_or_blank_title_is_no_title(
    served: tuple[Stubs, grpc.aio.Channel, Path],
) -> None:
    (v1, _), _, _ = served
    without = v1_answers(await v1.ClassifyFeatures(v1_request([None, None, None])))
    blank = v1_answers(await v1.ClassifyFeatures(v1_request(["", "   ", "\t"])))
    assert np.array_equal(blank, without)


async def test_the_longest_title_passes_and_one_more_character_is_refused(
    served: tuple[Stubs, grpc.aio.Channel, Path],
) -> None:
    (v1, _), _, _ = served
    longest = "x" * TITLE_LENGTH
    await v1.ClassifyFeatures(v1_request([None, longest, f"  {longest}  "]))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await v1.ClassifyFeatures(v1_request([None, None, longest + "y"]))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == (
        f"rows[2].text['title']: {TITLE_LENGTH + 1} characters exceed the limit of {TITLE_LENGTH}"
    )


async def test_a_title_that_is_not_utf8_is_refused_naming_the_field(
    served: tuple[Stubs, grpc.aio.Channel, Path],
) -> None:
    """A genre.v1 client cannot send such bytes through protobuf, but a hand-built message can."""
    _, channel, _ = served
    data = v1_request([None, "PLACEHOLDER", None]).SerializeToString()
    call = channel.unary_unary(CLASSIFY, None, None)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(data.replace(b"PLACEHOLDER", b"Caf\xe9 Noires"))  # same length, not UTF-8
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "rows[1].text['title']: not UTF-8"


@pytest.mark.parametrize(
    ("model", "text", "message"),
    [
        ("tiny-titled", {"lyrics": "la la"},
         "rows[0].text: unknown text feature 'lyrics' (this model takes 'title')"),
        ("tiny-mlp", {"title": "Rock Anthem"},
         "rows[0].text: unknown text feature 'title' (this model takes none)"),
    ],
)  # fmt: skip
async def test_text_a_model_does_not_take_is_refused_naming_the_key(
    served: tuple[Stubs, grpc.aio.Channel, Path], model: str, text: dict[str, str], message: str
) -> None:
    (v1, _), _, _ = served
    request = genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name=model),
        rows=[genre_pb2.FeatureRow(features=ROWS[0], text=text)],
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await v1.ClassifyFeatures(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == message


async def test_list_models_states_the_text_input_and_the_figures_without_it(
    served: tuple[Stubs, grpc.aio.Channel, Path],
) -> None:
    (v1, _), _, _ = served
    models = {m.model.name: m for m in (await v1.ListModels(genre_pb2.ListModelsRequest())).models}
    titled = models["tiny-titled"]
    assert [(t.name, t.max_length) for t in titled.text_features] == [("title", TITLE_LENGTH)]
    assert {m.name: m.value for m in titled.metrics}["accuracy_no_title"] == 0.25
    assert list(models["tiny-mlp"].text_features) == []


async def test_v2_states_the_optional_title_input(
    served: tuple[Stubs, grpc.aio.Channel, Path],
) -> None:
    (_, stub), _, _ = served
    meta = await stub.ModelMetadata(v2.ModelMetadataRequest(name="tiny-titled"))
    assert ("TITLE", "BYTES", [-1]) in [(t.name, t.datatype, list(t.shape)) for t in meta.inputs]
    config = (await stub.ModelConfig(v2.ModelConfigRequest(name="tiny-titled"))).config
    assert {item.name: item.optional for item in config.input} == {
        "FEATURES": False,
        "FEATURE_NAMES": True,
        "TITLE": True,
    }
    plain = await stub.ModelMetadata(v2.ModelMetadataRequest(name="tiny-mlp"))
    assert "TITLE" not in [t.name for t in plain.inputs]


async def test_v2_titles_give_genre_v1_answers_present_absent_and_empty(
    served: tuple[Stubs, grpc.aio.Channel, Path],
) -> None:
    (v1, stub), _, _ = served
    titles = [TITLES[2], "", TITLES[3]]
    over_v2 = v2_answers(await stub.ModelInfer(v2_request(titles)))
    over_v1 = v1_answers(await v1.ClassifyFeatures(v1_request([TITLES[2], None, TITLES[3]])))
    np.testing.assert_allclose(over_v2, over_v1, atol=1e-6)
    absent = v2_answers(await stub.ModelInfer(v2_request(None)))
    empty = v2_answers(await stub.ModelInfer(v2_request(["", "", ""])))
    assert np.array_equal(absent, empty)
    assert np.array_equal(over_v2[1], absent[1])
    without_v1 = v1_answers(await v1.ClassifyFeatures(v1_request([None, None, None])))
    np.testing.assert_allclose(absent, without_v1, atol=1e-6)


def _title_tensor(titles: list[bytes], shape: list[int]) -> v2.ModelInferRequest:
    request = v2_request(None)
    request.inputs.add(name="TITLE", datatype="BYTES", shape=shape)
    request.raw_input_contents.append(
        b"".join(len(item).to_bytes(4, "little") + item for item in titles)
    )
    return request


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        pytest.param(_title_tensor([b"", b"x" * (TITLE_LENGTH + 1), b""], [3]),
                     f"TITLE[1]: {TITLE_LENGTH + 1} characters exceed the limit of {TITLE_LENGTH}",
                     id="too-long"),
        pytest.param(_title_tensor([b"Caf\xe9", b"", b""], [3]),
                     "TITLE[0]: not UTF-8", id="not-utf8"),
        pytest.param(_title_tensor([b"a", b"b"], [2]),
                     "TITLE: shape [2], but FEATURES has 3 rows (one string per row, [3])",
                     id="count"),
        pytest.param(v2_request(["a", "b", "c"], model="tiny-mlp"),
                     "inputs: unknown input 'TITLE' for model 'tiny-mlp'",
                     id="model-without-titles"),
    ],
)  # fmt: skip
async def test_v2_bad_titles_get_invalid_argument_naming_the_tensor(
    served: tuple[Stubs, grpc.aio.Channel, Path], request_: v2.ModelInferRequest, message: str
) -> None:
    (_, stub), _, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ModelInfer(request_)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(refused.value.details()).startswith(message)
