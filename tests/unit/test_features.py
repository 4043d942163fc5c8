"""Feature decoding (``server.features``): both request forms give the same matrix, and each
fault is refused with INVALID_ARGUMENT or RESOURCE_EXHAUSTED naming the field, row and feature."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from google.protobuf.message import DecodeError

from genre.v1 import genre_pb2
from modelcore.preprocessing import TEXT_PADDING, FeaturePreprocessor, TextFeature
from server.errors import InvalidArgument, ServiceError, TooLarge
from server.features import decode_features
from server.undecodable import explain_undecodable
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


TITLED = replace(PREPROCESSOR, text_features=(TextFeature("title", 8),))


def titled_request(*titles: str | None) -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        rows=[
            genre_pb2.FeatureRow(features=example_row(), text={} if t is None else {"title": t})
            for t in titles
        ]
    )


def test_a_title_becomes_code_points_after_the_numeric_columns() -> None:
    matrix = decode_features(titled_request("Añ", None, "  ", " x "), TITLED, 8)
    numeric = len(FEATURE_NAMES)
    assert matrix.shape == (4, numeric + 8)
    assert matrix[0, numeric:].tolist() == [65.0, 241.0] + [TEXT_PADDING] * 6
    assert (matrix[1:3, numeric:] == TEXT_PADDING).all()  # absent and blank: no title
    assert matrix[3, numeric:].tolist() == [120.0] + [TEXT_PADDING] * 7  # trimmed
    plain = decode_features(titled_request(None), PREPROCESSOR, 8)
    assert np.array_equal(matrix[1, :numeric], plain[0])


def test_the_dense_form_carries_no_title() -> None:
    names = list(FEATURE_NAMES)
    matrix = decode_features(dense_request(names, [example_row()[n] for n in names]), TITLED, 8)
    assert (matrix[0, len(names) :] == TEXT_PADDING).all()


@pytest.mark.parametrize(
    ("preprocessor", "text", "message"),
    [
        (TITLED, {"title": "123456789"},
         "rows[0].text['title']: 9 characters exceed the limit of 8"),
        (TITLED, {"lyrics": "la"},
         "rows[0].text: unknown text feature 'lyrics' (this model takes 'title')"),
        (PREPROCESSOR, {"title": "a"},
         "rows[0].text: unknown text feature 'title' (this model takes none)"),
    ],
)  # fmt: skip
def test_bad_text_is_refused_naming_the_field_and_key(
    preprocessor: FeaturePreprocessor, text: dict[str, str], message: str
) -> None:
    request = genre_pb2.ClassifyFeaturesRequest(
        rows=[genre_pb2.FeatureRow(features=example_row(), text=text)]
    )
    with pytest.raises(InvalidArgument) as refused:
        decode_features(request, preprocessor, 8)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("swap", "named"),
    [
        ((b"PLACEHOLDER", b"Caf\xe9 Noires"), "rows[1].text['title']: not UTF-8"),
        ((b"tiny", b"t\xffny"), "model.name: not UTF-8"),
        ((b"PLACEHOLDER", b"\xff" * 11), "rows[1].text['title']: not UTF-8"),
        ((b"title", b"t\xfftle"), None),  # a map key: protobuf refuses it in the lenient twin too
    ],
)
def test_undecodable_text_is_named_by_its_field(
    swap: tuple[bytes, bytes], named: str | None
) -> None:
    request = titled_request(None, "PLACEHOLDER")
    request.model.name = "tiny"
    assert len(swap[0]) == len(swap[1])  # the length prefixes stay right: only the text is bad
    data = request.SerializeToString().replace(*swap)
    with pytest.raises(DecodeError):
        genre_pb2.ClassifyFeaturesRequest.FromString(data)
    assert explain_undecodable("genre.v1.ClassifyFeaturesRequest", data) == named
    assert explain_undecodable("genre.v1.ListModelsRequest", b"\xff") is None
