"""ClassifyFeatures wire format <-> numpy: decoding with validation, and ranked responses.

Both request forms become one ``(N, W)`` float32 matrix in the model's column order, NaN where a
caller omitted a feature the model can impute. For a model with text features (a track's title)
the numeric columns are followed by each text feature's code-point columns
(``modelcore.preprocessing.TextFeature``), padding where a row has none, so one matrix still
carries the whole call. Every rejection names the field, the row and the feature, so a caller
can fix the request without reading server logs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from genre.v1 import genre_pb2
from modelcore.preprocessing import TEXT_PADDING, FeaturePreprocessor
from server.errors import InvalidArgument, TooLarge

FloatArray = npt.NDArray[np.float32]
_FieldOfRow = Callable[[int], str]
FLOAT32_MAX = float(np.finfo(np.float32).max)


def decode_features(
    request: genre_pb2.ClassifyFeaturesRequest,
    preprocessor: FeaturePreprocessor,
    max_rows: int,
) -> FloatArray:
    has_rows = len(request.rows) > 0
    has_dense = request.HasField("dense") and (
        len(request.dense.feature_names) > 0 or len(request.dense.values) > 0
    )
    if has_rows and has_dense:
        raise InvalidArgument("rows, dense: give one form of input, not both")
    if has_dense:
        return _decode_dense(request.dense, preprocessor, max_rows)
    if not has_rows:
        raise InvalidArgument("rows: no rows given (send rows or dense)")
    return _decode_rows(request.rows, preprocessor, max_rows)


def _check_row_count(count: int, field_name: str, max_rows: int) -> None:
    if count > max_rows:
        raise TooLarge(f"{field_name}: {count} rows exceed the limit of {max_rows} per call")


def _decode_rows(
    rows: Sequence[genre_pb2.FeatureRow], preprocessor: FeaturePreprocessor, max_rows: int
) -> FloatArray:
    """Each row's map into its model columns; values are checked as one array per row, and the
    per-value loop runs only to name the first bad value once one is known to be there.

    A protobuf map read as a ``dict`` goes through the Mapping protocol key by key (11 µs for 57
    features); its keys as a tuple and its values by key cost a third of that, and the columns
    of a key order already seen come from a cache, since a caller sends the same order each call.
    """
    _check_row_count(len(rows), "rows", max_rows)
    names = preprocessor.feature_names
    matrix = empty_matrix(len(rows), preprocessor)
    for index, row in enumerate(rows):
        if row.text:
            place_text(matrix[index], row.text, preprocessor, f"rows[{index}].text")
        features = row.features
        keys = tuple(features)
        if not keys:
            raise InvalidArgument(f"rows[{index}].features: empty row")
        positions = _positions(keys, names, index)
        values = np.array([features[key] for key in keys], dtype=np.float64)
        # a finite double can still overflow the model's float32
        if not (np.abs(values) <= FLOAT32_MAX).all():  # NaN fails the comparison too
            _raise_bad_value(index, dict(zip(keys, values.tolist(), strict=True)))
        matrix[index, positions] = values
    _check_required(matrix, preprocessor, lambda row: f"rows[{row}].features")
    return matrix


def _positions(keys: tuple[str, ...], names: tuple[str, ...], index: int) -> npt.NDArray[np.intp]:
    """The model columns of ``keys``; INVALID_ARGUMENT naming the first unknown feature."""
    try:
        return _known_positions(keys, names)
    except KeyError:
        columns = _columns(names)
        unknown = sorted(set(keys) - columns.keys())
        raise InvalidArgument(
            f"rows[{index}].features: unknown feature {unknown[0]!r}"
            f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}"
        ) from None


@lru_cache(maxsize=256)
def _known_positions(keys: tuple[str, ...], names: tuple[str, ...]) -> npt.NDArray[np.intp]:
    """KeyError for an unknown key (not cached: ``lru_cache`` keeps only results)."""
    columns = _columns(names)
    return np.array([columns[key] for key in keys], dtype=np.intp)


def empty_matrix(rows: int, preprocessor: FeaturePreprocessor) -> FloatArray:
    """``(rows, width)``: NaN in every numeric column (nothing given yet), padding in every
    text column (no text given)."""
    matrix = np.full((rows, preprocessor.width), np.nan, dtype=np.float32)
    matrix[:, len(preprocessor.feature_names) :] = TEXT_PADDING
    return matrix


def place_text(
    row: FloatArray,
    text: Mapping[str, str],
    preprocessor: FeaturePreprocessor,
    field: str,
    keyed: bool = True,
) -> None:
    """Writes ``text`` (name -> value) into one row's text columns. A value is trimmed of
    surrounding spaces; empty, the row has no such text. Unknown names and values over the
    feature's ``max_length`` characters are refused naming ``field`` (and the key after it, as
    genre.v1's ``rows[3].text['title']``, unless ``keyed`` is false: v2's ``TITLE[3]``)."""
    known = {feature.name: feature for feature in preprocessor.text_features}
    for name, value in text.items():
        feature = known.get(name)
        if feature is None:
            takes = ", ".join(repr(key) for key in sorted(known)) or "none"
            raise InvalidArgument(
                f"{field}: unknown text feature {name!r} (this model takes {takes})"
            )
        value = value.strip()
        if len(value) > feature.max_length:
            raise InvalidArgument(
                f"{field}{f'[{name!r}]' if keyed else ''}: {len(value)} characters exceed the "
                f"limit of {feature.max_length}"
            )
        row[preprocessor.text_columns(name)] = feature.encode(value)


@lru_cache(maxsize=64)
def _columns(names: tuple[str, ...]) -> dict[str, int]:
    return {name: position for position, name in enumerate(names)}


def _raise_bad_value(index: int, features: dict[str, float]) -> None:
    for name, value in features.items():
        if not math.isfinite(value):
            raise InvalidArgument(f"rows[{index}].features[{name!r}]: {value} is not finite")
        if abs(value) > FLOAT32_MAX:
            raise InvalidArgument(f"rows[{index}].features[{name!r}]: value out of float32 range")
    raise AssertionError("unreachable: a value failed the range check")


def _decode_dense(
    dense: genre_pb2.DenseFeatures, preprocessor: FeaturePreprocessor, max_rows: int
) -> FloatArray:
    values = np.array(dense.values, dtype=np.float32)  # no per-value loop
    return decode_matrix(
        list(dense.feature_names),
        values,
        preprocessor,
        max_rows,
        DenseFields("dense.feature_names", "dense.values"),
    )


@dataclass(frozen=True)
class DenseFields:
    """How the caller's protocol names the column names and the values, for error messages."""

    names: str
    values: str


def decode_matrix(
    given: list[str],
    values: FloatArray,
    preprocessor: FeaturePreprocessor,
    max_rows: int,
    fields: DenseFields,
) -> FloatArray:
    """Row-major ``values`` in the columns ``given``, checked and placed in the model's column
    order (omitted columns NaN, for imputation; text columns empty, for ``place_text``):
    genre.v1's dense rows and the Open Inference Protocol's FEATURES tensor both arrive this
    way."""
    if not given:
        raise InvalidArgument(f"{fields.names}: required with {fields.values}")
    if len(set(given)) != len(given):
        duplicate = next(name for name in given if given.count(name) > 1)
        raise InvalidArgument(f"{fields.names}: {duplicate!r} appears more than once")
    columns = _columns(preprocessor.feature_names)
    unknown = [name for name in given if name not in columns]
    if unknown:
        raise InvalidArgument(f"{fields.names}: unknown feature {unknown[0]!r}")
    count = int(values.size)
    if count == 0 or count % len(given):
        raise InvalidArgument(
            f"{fields.values}: {count} values do not fill whole rows of {len(given)} features"
        )
    _check_row_count(count // len(given), fields.values, max_rows)
    values = values.reshape(-1, len(given))
    not_finite = ~np.isfinite(values)
    if not_finite.any():
        row, column = (int(i) for i in np.argwhere(not_finite)[0])
        raise InvalidArgument(
            f"{fields.values}[row {row}, {given[column]!r}]: {values[row, column]} is not finite"
        )
    matrix = empty_matrix(values.shape[0], preprocessor)
    matrix[:, [columns[name] for name in given]] = values
    _check_required(matrix, preprocessor, lambda _row: fields.names)
    return matrix


def _check_required(
    matrix: FloatArray, preprocessor: FeaturePreprocessor, field_of_row: _FieldOfRow
) -> None:
    """Omitted features must be ones this model imputes; name the first that is not."""
    missing = np.isnan(matrix[:, : len(preprocessor.feature_names)])
    if not missing.any():
        return
    imputable = preprocessor.imputable
    for column in np.flatnonzero(missing.any(axis=0)):
        name = preprocessor.feature_names[column]
        if name not in imputable:
            row = int(np.flatnonzero(missing[:, column])[0])
            can = ", ".join(sorted(imputable)) or "none"
            raise InvalidArgument(
                f"{field_of_row(row)}: missing feature {name!r}, which this model cannot impute "
                f"(imputable: {can})"
            )


def ranked(
    probabilities: FloatArray, labels: Sequence[str], top_k: int
) -> list[genre_pb2.Classification]:
    """One Classification per row, scores sorted by probability, highest first."""
    classes = probabilities.shape[1]
    keep = classes if top_k == 0 else min(top_k, classes)
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :keep]
    chosen = np.take_along_axis(probabilities, order, axis=1)
    results = []
    for indices, scores in zip(order.tolist(), chosen.tolist(), strict=True):
        results.append(
            genre_pb2.Classification(
                scores=[
                    genre_pb2.GenreScore(genre=labels[index], probability=score)
                    for index, score in zip(indices, scores, strict=True)
                ]
            )
        )
    return results
