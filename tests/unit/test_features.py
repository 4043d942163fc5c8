"""Feature decoding (``server.features``): both request forms give the same matrix, and each
fault is refused with INVALID_ARGUMENT or RESOURCE_EXHAUSTED naming the field, row and feature."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genre.v1 import genre_pb2
from server.errors import InvalidArgument, ServiceError, TooLarge
from server.features import decode_features
from tests.support.checkpoints import FEATURE_NAMES, example_row, tiny_preprocessor

PREPROCESSOR = tiny_preprocessor()


def rows_request(*rows: dict[str, float]) -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        rows=[genre_pb2.FeatureRow(features=row) for row in rows]
    )


def dense_request(names: list[str], values: list[float]) -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        dense=genre_pb2.DenseFeatures(feature_names=names, values=values)
    )


def test_rows_and_dense_give_the_same_matrix_in_the_model_order() -> None:
    first, second = example_row(), example_row(tempo=90.0)
    from_rows = decode_features(rows_request(first, second), PREPROCESSOR, 8)
    names = list(reversed(FEATURE_NAMES))
    values = [row[name] for row in (first, second) for name in names]
    from_dense = decode_features(dense_request(names, values), PREPROCESSOR, 8)
    assert from_rows.shape == (2, len(FEATURE_NAMES))
    assert np.array_equal(from_rows, from_dense)
    assert from_rows[1, FEATURE_NAMES.index("tempo")] == 90.0


def test_an_imputable_feature_may_be_omitted_as_nan() -> None:
    row = example_row()
    del row["key"]
    matrix = decode_features(rows_request(row), PREPROCESSOR, 8)
    assert math.isnan(matrix[0, FEATURE_NAMES.index("key")])


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (genre_pb2.ClassifyFeaturesRequest(), InvalidArgument, "rows: no rows given"),
        (rows_request({}), InvalidArgument, "rows[0]"),
        (
            rows_request({k: v for k, v in example_row().items() if k != "tempo"}),
            InvalidArgument,
            "missing feature 'tempo'",
        ),
        (rows_request({**example_row(), "colour": 1.0}), InvalidArgument, "'colour'"),
        (rows_request(example_row(energy=float("nan"))), InvalidArgument, "energy"),
        (rows_request(example_row(tempo=1e39)), InvalidArgument, "tempo"),
        (dense_request(list(FEATURE_NAMES), [1.0, 2.0]), InvalidArgument, "dense.values"),
        (
            dense_request([*FEATURE_NAMES[:-1], FEATURE_NAMES[0]], [0.0] * 5),
            InvalidArgument,
            "dense.feature_names",
        ),
        (rows_request(*[example_row()] * 9), TooLarge, "rows: 9 rows exceed the limit of 8"),
    ],
)
def test_faults_are_refused_naming_the_field(
    request_: genre_pb2.ClassifyFeaturesRequest, error: type[ServiceError], message: str
) -> None:
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]")):
        decode_features(request_, PREPROCESSOR, 8)
