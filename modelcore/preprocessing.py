"""Feature preprocessing that travels with a model: unit repair, imputation, standardisation,
and the columns of its optional text features.

Training fits it (see ``training.features.preprocessor_fit``) and writes it into the manifest;
the server rebuilds it from the manifest and applies the very same ``transform``, so a row
scored through gRPC is preprocessed exactly as the evaluation rows were. Missing values are NaN
on input. Imputers are linear in other features (a constant when they have no terms), fitted on
training rows alone and never on the label; rounding and clipping let them produce categorical
values such as a musical key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class UnitRepair:
    """Values below ``below`` are in another unit and are multiplied by ``multiply``.

    Example: the Spotify set's ``duration_in min/ms`` holds minutes on some rows.
    """

    feature: str
    below: float
    multiply: float


@dataclass(frozen=True)
class Imputer:
    """Fills a missing feature with ``intercept + sum(coefficient * other feature)``."""

    feature: str
    intercept: float
    terms: tuple[tuple[str, float], ...] = ()
    clip: tuple[float, float] | None = None
    round_to_integer: bool = False

    def predict(self, columns: Mapping[str, FloatArray]) -> FloatArray:
        first = next(iter(columns.values()))
        values = np.full(first.shape[0], self.intercept, dtype=np.float64)
        for name, coefficient in self.terms:
            values += coefficient * columns[name].astype(np.float64)
        if self.round_to_integer:
            values = np.rint(values)
        if self.clip is not None:
            values = np.clip(values, self.clip[0], self.clip[1])
        return values.astype(np.float32)


TEXT_PADDING = -1.0  # a text column holding no character


@dataclass(frozen=True)
class TextFeature:
    """An optional text input (e.g. a track's title), carried in the model's float32 input
    matrix as ``max_length`` columns after the numeric ones: its Unicode code points (exact in
    float32, all below 2^21), left-aligned, then ``TEXT_PADDING``. A row without the text has
    only padding there; what the model makes of the code points is its own business."""

    name: str
    max_length: int

    def __post_init__(self) -> None:
        if not self.name or self.max_length < 1:
            raise ValueError("a text feature needs a name and a positive max_length")

    def encode(self, text: str) -> FloatArray:
        """``text``'s columns; "" is a row without it. The caller checks the length first."""
        if len(text) > self.max_length:
            raise ValueError(f"{self.name!r} holds {len(text)} characters, over {self.max_length}")
        codes = np.full(self.max_length, TEXT_PADDING, dtype=np.float32)
        codes[: len(text)] = [ord(character) for character in text]
        return codes


@dataclass(frozen=True)
class LogTransform:
    """Replaces a non-negative, heavy-tailed feature by ``log(value + offset)`` before scaling.

    Example: GTZAN's ``*_var`` columns span several orders of magnitude; on a log scale they
    standardise into a range an MLP can use. Values at or below ``-offset`` map to
    ``log(offset)`` rather than NaN, so a bad input cannot poison a batch.
    """

    feature: str
    offset: float

    def __post_init__(self) -> None:
        if not np.isfinite(self.offset) or self.offset <= 0:
            raise ValueError("log offset must be finite and positive")

    def apply(self, values: FloatArray) -> FloatArray:
        return log_scale(values, np.float64(self.offset))


def log_scale(values: FloatArray, offsets: np.float64 | npt.NDArray[np.float64]) -> FloatArray:
    """``log(max(values + offsets, offsets))`` in float64, as float32; ``offsets`` broadcast over
    the last axis, so one call scales one column or every logged column of a matrix."""
    shifted = np.maximum(values.astype(np.float64) + offsets, offsets)
    return np.log(shifted).astype(np.float32)


@dataclass(frozen=True)
class FeaturePreprocessor:
    """Maps raw feature rows ``(N, F)`` (NaN = omitted) to standardised model input ``(N, F)``.

    Order: unit repairs, imputation, log transforms (optional), then standardisation with
    ``mean``/``std`` (which are statistics of the log-transformed columns where one applies).
    With ``text_features`` the rows are ``(N, F + sum of max_length)``: those transformed
    numeric columns, then each text feature's code-point columns, passed through unchanged.
    """

    feature_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    unit_repairs: tuple[UnitRepair, ...] = ()
    imputers: tuple[Imputer, ...] = ()
    log_transforms: tuple[LogTransform, ...] = ()
    text_features: tuple[TextFeature, ...] = ()
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    _log_positions: npt.NDArray[np.int64] = field(init=False, repr=False, compare=False)
    _log_offsets: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)
    _mean: FloatArray = field(init=False, repr=False, compare=False)
    _std: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        count = len(self.feature_names)
        if count == 0:
            raise ValueError("a preprocessor needs at least one feature")
        if len(set(self.feature_names)) != count:
            raise ValueError("feature names must be unique")
        if len(self.mean) != count or len(self.std) != count:
            raise ValueError(f"mean and std need {count} entries each")
        if any(not np.isfinite(value) or value <= 0 for value in self.std):
            raise ValueError("std entries must be finite and positive")
        index = {name: position for position, name in enumerate(self.feature_names)}
        object.__setattr__(self, "_index", index)
        available = set(self.feature_names) - {imputer.feature for imputer in self.imputers}
        for repair in self.unit_repairs:
            if repair.feature not in index:
                raise ValueError(f"unit repair names unknown feature {repair.feature!r}")
        for imputer in self.imputers:
            if imputer.feature not in index:
                raise ValueError(f"imputer names unknown feature {imputer.feature!r}")
            for name, _ in imputer.terms:
                if name not in available:
                    raise ValueError(
                        f"imputer for {imputer.feature!r} uses {name!r}, which is neither "
                        "required nor imputed before it"
                    )
            available.add(imputer.feature)
        texts = [text.name for text in self.text_features]
        if len(set(texts)) != len(texts):
            raise ValueError("text features must have distinct names")
        logged = [transform.feature for transform in self.log_transforms]
        if len(set(logged)) != len(logged) or not set(logged) <= set(index):
            raise ValueError("log transforms must name distinct known features")
        # Arrays for ``transform``, built once: one vectorised step for all log columns instead
        # of one per column (GTZAN logs 28; per column that was most of a one-row call's cost).
        object.__setattr__(self, "_log_positions", np.array([index[f] for f in logged], int))
        offsets = [transform.offset for transform in self.log_transforms]
        object.__setattr__(self, "_log_offsets", np.array(offsets, dtype=np.float64))
        object.__setattr__(self, "_mean", np.asarray(self.mean, dtype=np.float32))
        object.__setattr__(self, "_std", np.asarray(self.std, dtype=np.float32))

    @property
    def imputable(self) -> frozenset[str]:
        return frozenset(imputer.feature for imputer in self.imputers)

    @property
    def required(self) -> tuple[str, ...]:
        imputable = self.imputable
        return tuple(name for name in self.feature_names if name not in imputable)

    def column(self, name: str) -> int:
        return self._index[name]

    @property
    def width(self) -> int:
        """Columns of the input matrix: the numeric features, then every text feature's."""
        return len(self.feature_names) + sum(text.max_length for text in self.text_features)

    def text_columns(self, name: str) -> slice:
        """Where text feature ``name``'s code points sit in an input row."""
        start = len(self.feature_names)
        for text in self.text_features:
            if text.name == name:
                return slice(start, start + text.max_length)
            start += text.max_length
        raise KeyError(name)

    def fill(self, rows: npt.ArrayLike) -> FloatArray:
        """Unit repair and imputation only: the raw-scale matrix with no NaN left."""
        matrix = np.array(rows, dtype=np.float32, copy=True)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.feature_names):
            raise ValueError(f"expected (N, {len(self.feature_names)}) rows, got {matrix.shape}")
        for repair in self.unit_repairs:
            values = matrix[:, self._index[repair.feature]]
            wrong_unit = values < repair.below
            values[wrong_unit] *= np.float32(repair.multiply)
        missing = np.isnan(matrix)
        if missing.any():
            columns = {name: matrix[:, position] for name, position in self._index.items()}
            for imputer in self.imputers:
                position = self._index[imputer.feature]
                gaps = missing[:, position]
                if gaps.any():
                    matrix[gaps, position] = imputer.predict(columns)[gaps]
            still_missing = np.isnan(matrix).any(axis=0)
            if still_missing.any():
                names = [self.feature_names[i] for i in np.flatnonzero(still_missing)]
                raise ValueError(f"missing values in features that cannot be imputed: {names}")
        return matrix

    def transform(self, rows: npt.ArrayLike) -> FloatArray:
        """``(N, width)`` raw rows -> the model's input: standardised numeric columns, and the
        text columns as they came."""
        if not self.text_features:
            return self._standardise(self.fill(rows))
        matrix = np.asarray(rows, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.width:
            raise ValueError(f"expected (N, {self.width}) rows, got {matrix.shape}")
        numeric = self._standardise(self.fill(matrix[:, : len(self.feature_names)]))
        return np.concatenate([numeric, matrix[:, len(self.feature_names) :]], axis=1)

    def _standardise(self, filled: FloatArray) -> FloatArray:
        if self.log_transforms:  # every logged column in one step
            positions = self._log_positions
            filled[:, positions] = log_scale(filled[:, positions], self._log_offsets)
        return ((filled - self._mean) / self._std).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        texts = [{"name": t.name, "max_length": t.max_length} for t in self.text_features]
        return ({"text_features": texts} if texts else {}) | {
            "feature_names": list(self.feature_names),
            "mean": list(self.mean),
            "std": list(self.std),
            "unit_repairs": [
                {"feature": r.feature, "below": r.below, "multiply": r.multiply}
                for r in self.unit_repairs
            ],
            "imputers": [
                {
                    "feature": i.feature,
                    "intercept": i.intercept,
                    "terms": [[name, coefficient] for name, coefficient in i.terms],
                    "clip": list(i.clip) if i.clip is not None else None,
                    "round_to_integer": i.round_to_integer,
                }
                for i in self.imputers
            ],
            "log_transforms": [
                {"feature": t.feature, "offset": t.offset} for t in self.log_transforms
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeaturePreprocessor:
        return cls(
            feature_names=tuple(str(name) for name in data["feature_names"]),
            mean=_floats(data["mean"]),
            std=_floats(data["std"]),
            unit_repairs=tuple(
                UnitRepair(str(r["feature"]), float(r["below"]), float(r["multiply"]))
                for r in data.get("unit_repairs", [])
            ),
            imputers=tuple(
                Imputer(
                    feature=str(i["feature"]),
                    intercept=float(i["intercept"]),
                    terms=tuple((str(name), float(value)) for name, value in i.get("terms", [])),
                    clip=(float(i["clip"][0]), float(i["clip"][1])) if i.get("clip") else None,
                    round_to_integer=bool(i.get("round_to_integer", False)),
                )
                for i in data.get("imputers", [])
            ),
            log_transforms=tuple(
                LogTransform(str(t["feature"]), float(t["offset"]))
                for t in data.get("log_transforms", [])
            ),
            text_features=tuple(
                TextFeature(str(t["name"]), int(t["max_length"]))
                for t in data.get("text_features", [])
            ),
        )


def _floats(values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float(value) for value in values)
