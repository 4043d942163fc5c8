"""ClassifyFeatures and ListModels happy paths against a real server."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genre.v1 import genre_pb2, genre_pb2_grpc
from modelcore.checkpoint import load_checkpoint
from modelcore.models import build_model
from modelcore.preprocessing import FeaturePreprocessor
from server.app import App
from tests.support.checkpoints import FEATURE_NAMES, LABELS, example_row


def request(
    *rows: dict[str, float], name: str = "tiny-mlp", version: str = "", top_k: int = 0
) -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name=name, version=version),
        rows=[genre_pb2.FeatureRow(features=row) for row in rows],
        top_k=top_k,
    )


def expected_probabilities(app: App, version: int, rows: list[dict[str, float]]) -> np.ndarray:
    """What the training code computes for these rows, independent of the serving path."""
    checkpoint = load_checkpoint(app.config.model_repository / "tiny-mlp" / str(version))
    model = build_model(checkpoint.manifest.architecture)
    model.load_state_dict(checkpoint.state_dict)
    model.eval()
    preprocessor = FeaturePreprocessor.from_dict(checkpoint.manifest.preprocessing)
    matrix = np.array([[row.get(n, math.nan) for n in FEATURE_NAMES] for row in rows])
    with torch.no_grad():
        logits = model(torch.from_numpy(preprocessor.transform(matrix)))
    temperature = checkpoint.manifest.temperature
    return torch.softmax(logits / temperature, dim=1).numpy()


def as_arrays(result: genre_pb2.Classification) -> dict[str, float]:
    return {score.genre: score.probability for score in result.scores}


async def test_rows_get_ranked_probabilities_from_the_default_version(
    app: App, stub: genre_pb2_grpc.GenreClassifierAsyncStub
) -> None:
    rows = [example_row(), example_row(tempo=70.0, energy=0.1), example_row(loudness=-20.0)]
    reply = await stub.ClassifyFeatures(request(*rows))
    assert reply.model.name == "tiny-mlp"
    assert reply.model.version == "2"  # the highest version serves by default
    assert len(reply.results) == len(rows)
    expected = expected_probabilities(app, 2, rows)
    for result, want in zip(reply.results, expected, strict=True):
        probabilities = [score.probability for score in result.scores]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
        got = as_arrays(result)
        assert [got[label] for label in LABELS] == pytest.approx(want.tolist(), abs=1e-5)


async def test_a_pinned_version_answers_and_is_named(
    app: App, stub: genre_pb2_grpc.GenreClassifierAsyncStub
) -> None:
    rows = [example_row()]
    reply = await stub.ClassifyFeatures(request(*rows, version="1"))
    assert reply.model.version == "1"
    got = as_arrays(reply.results[0])
    want = expected_probabilities(app, 1, rows)[0]
    assert [got[label] for label in LABELS] == pytest.approx(want.tolist(), abs=1e-5)
    other = as_arrays((await stub.ClassifyFeatures(request(*rows, version="2"))).results[0])
    assert other != got  # different weights, different answer


async def test_top_k_keeps_the_best_classes(stub: genre_pb2_grpc.GenreClassifierAsyncStub) -> None:
    full = (await stub.ClassifyFeatures(request(example_row()))).results[0]
    top = (await stub.ClassifyFeatures(request(example_row(), top_k=2))).results[0]
    assert [s.genre for s in top.scores] == [s.genre for s in full.scores][:2]
    too_many = (await stub.ClassifyFeatures(request(example_row(), top_k=99))).results[0]
    assert len(too_many.scores) == len(LABELS)


async def test_an_imputable_feature_may_be_omitted(
    app: App, stub: genre_pb2_grpc.GenreClassifierAsyncStub
) -> None:
    row = example_row()
    del row["key"]
    reply = await stub.ClassifyFeatures(request(row))
    got = as_arrays(reply.results[0])
    want = expected_probabilities(app, 2, [row])[0]  # imputes key from energy, as trained
    assert [got[label] for label in LABELS] == pytest.approx(want.tolist(), abs=1e-5)


async def test_dense_form_matches_named_rows(stub: genre_pb2_grpc.GenreClassifierAsyncStub) -> None:
    rng = np.random.default_rng(7)
    rows = [
        example_row(tempo=float(t), energy=float(e)) for t, e in rng.uniform(0, 1, (40, 2)) * 150
    ]
    order = list(reversed(FEATURE_NAMES))  # any column order works
    dense = genre_pb2.DenseFeatures(
        feature_names=order,
        values=np.array([[row[n] for n in order] for row in rows], dtype=np.float32).ravel(),
    )
    dense_reply = await stub.ClassifyFeatures(
        genre_pb2.ClassifyFeaturesRequest(model=genre_pb2.ModelRef(name="tiny-mlp"), dense=dense)
    )
    named_reply = await stub.ClassifyFeatures(request(*rows))
    assert len(dense_reply.results) == len(rows)
    for a, b in zip(dense_reply.results, named_reply.results, strict=True):
        assert as_arrays(a) == pytest.approx(as_arrays(b), abs=1e-5)


async def test_list_models_describes_every_version(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    reply = await stub.ListModels(genre_pb2.ListModelsRequest())
    listed = {(m.model.name, m.model.version): m for m in reply.models}
    assert set(listed) == {("tiny-mlp", "1"), ("tiny-mlp", "2"), ("other-mlp", "1")}
    latest = listed[("tiny-mlp", "2")]
    assert latest.is_default
    assert not listed[("tiny-mlp", "1")].is_default
    assert latest.kind == genre_pb2.FEATURES
    assert list(latest.labels) == list(LABELS)
    assert [f.name for f in latest.features] == list(FEATURE_NAMES)
    assert {f.name for f in latest.features if f.imputable} == {"key"}
    assert latest.split_protocol == "untrained test model"
    assert {m.name for m in latest.metrics} == {"accuracy"}
    assert len(latest.weights_sha256) == 64
