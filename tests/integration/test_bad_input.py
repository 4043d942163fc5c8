"""Every bad request gets a precise status and a message naming the field; others keep working."""

from __future__ import annotations

import math

import grpc
import numpy as np
import pytest

from genre.v1 import genre_pb2, genre_pb2_grpc
from server.app import App
from tests.support.checkpoints import FEATURE_NAMES, example_row

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def rows_request(
    *rows: dict[str, float], name: str = "tiny-mlp", version: str = ""
) -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name=name, version=version),
        rows=[genre_pb2.FeatureRow(features=row) for row in rows],
    )


def dense_request(names: list[str], values: list[float]) -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name="tiny-mlp"),
        dense=genre_pb2.DenseFeatures(feature_names=names, values=values),
    )


def without(row: dict[str, float], name: str) -> dict[str, float]:
    return {key: value for key, value in row.items() if key != name}


CASES = [
    pytest.param(rows_request(example_row(), name="nope"), grpc.StatusCode.NOT_FOUND,
                 "model.name", id="unknown-model"),
    pytest.param(rows_request(example_row(), version="9"), grpc.StatusCode.NOT_FOUND,
                 "model.version", id="unknown-version"),
    pytest.param(rows_request(example_row(), version="latest"), grpc.StatusCode.NOT_FOUND,
                 "model.version", id="non-numeric-version"),
    pytest.param(rows_request(example_row(), name=""), INVALID, "model.name", id="no-model"),
    pytest.param(rows_request(), INVALID, "rows", id="no-rows"),
    pytest.param(rows_request({}), INVALID, "rows[0].features: empty", id="empty-row"),
    pytest.param(rows_request(example_row(), example_row(colour=1.0)), INVALID,
                 "rows[1].features: unknown feature 'colour'", id="extra-feature"),
    pytest.param(rows_request(example_row(), without(example_row(), "tempo")), INVALID,
                 "rows[1].features: missing feature 'tempo'", id="missing-feature"),
    pytest.param(rows_request(example_row(energy=math.nan)), INVALID,
                 "rows[0].features['energy']", id="nan"),
    pytest.param(rows_request(example_row(tempo=math.inf)), INVALID,
                 "rows[0].features['tempo']", id="inf"),
    pytest.param(rows_request(example_row(loudness=1e300)), INVALID,
                 "rows[0].features['loudness']: value out of float32 range", id="huge"),
    pytest.param(dense_request(list(FEATURE_NAMES), [1.0] * 7), INVALID,
                 "dense.values: 7 values", id="dense-ragged"),
    pytest.param(dense_request(list(FEATURE_NAMES), []), INVALID, "dense.values",
                 id="dense-no-values"),
    pytest.param(dense_request([], [1.0]), INVALID, "dense.feature_names", id="dense-no-names"),
    pytest.param(dense_request(["tempo", "tempo"], [1.0, 2.0]), INVALID,
                 "dense.feature_names: 'tempo' appears more than once", id="dense-duplicate"),
    pytest.param(dense_request(["tempo", "colour"], [1.0, 2.0]), INVALID,
                 "dense.feature_names: unknown feature 'colour'", id="dense-unknown"),
    pytest.param(dense_request(["tempo", "energy"], [1.0, 2.0]), INVALID,
                 "dense.feature_names: missing feature 'loudness'", id="dense-missing"),
    pytest.param(dense_request(list(FEATURE_NAMES), [1.0, 2.0, math.inf, 4.0, 5.0]), INVALID,
                 "dense.values[row 0, 'loudness']", id="dense-inf"),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "code", "message"), CASES)
async def test_bad_input_gets_a_precise_status(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
    bad: genre_pb2.ClassifyFeaturesRequest,
    code: grpc.StatusCode,
    message: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ClassifyFeatures(bad)
    assert caught.value.code() == code
    assert message in (caught.value.details() or "")
    good = await stub.ClassifyFeatures(rows_request(example_row()))  # others keep being served
    assert len(good.results) == 1


async def test_both_forms_at_once_are_refused(
    stub: genre_pb2_grpc.GenreClassifierAsyncStub,
) -> None:
    both = rows_request(example_row())
    both.dense.feature_names.extend(FEATURE_NAMES)
    both.dense.values.extend([1.0] * len(FEATURE_NAMES))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ClassifyFeatures(both)
    assert caught.value.code() == INVALID
    assert "rows, dense" in (caught.value.details() or "")


async def test_too_many_rows_are_refused_as_too_large(
    app: App, stub: genre_pb2_grpc.GenreClassifierAsyncStub
) -> None:
    limit = app.config.max_rows_per_request
    values = np.ones((limit + 1, len(FEATURE_NAMES)), dtype=np.float32).ravel()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ClassifyFeatures(dense_request(list(FEATURE_NAMES), values.tolist()))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"dense.values: {limit + 1} rows exceed the limit of {limit}" in (
        caught.value.details() or ""
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ClassifyFeatures(rows_request(*[example_row()] * (limit + 1)))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "rows:" in (caught.value.details() or "")
