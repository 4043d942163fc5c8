"""Ranked results straight to protobuf wire bytes with numpy, for responses with many rows.

Building ``GenreScore`` messages one by one costs about a microsecond each in Python: 2,560 of
them for a 256-row response of a 10-class model, milliseconds per call. The wire format of
``repeated Classification results = 2`` is simple enough to assemble with array operations
instead: each score is a fixed per-label prefix (tag, lengths, the label's UTF-8 bytes, the float
tag) followed by the probability's four little-endian bytes. The bytes are merged into the
response message, whose serialiser then writes them out exactly as if they had been built as
messages (it drops zero probabilities, as proto3 does for any message).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
_RESULTS_TAG = 0x12  # field 2 (results), length-delimited
_SCORES_TAG, _GENRE_TAG, _PROBABILITY_TAG = b"\x0a", b"\x0a", b"\x15"
_FLOAT = struct.Struct("<f")
# Up to here joining bytes in Python beats numpy's fixed overhead per call (measured: ~4 µs
# against ~30 µs for one row of ten classes).
PYTHON_MAX_ROWS = 8


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


class ResultsEncoder:
    """Encodes ``(N, C)`` probabilities as ``ClassifyFeaturesResponse.results`` wire bytes."""

    def __init__(self, labels: Sequence[str]) -> None:
        prefixes = []
        for label in labels:
            name = label.encode()
            genre = _GENRE_TAG + _varint(len(name)) + name
            score_length = len(genre) + 1 + 4
            prefixes.append(_SCORES_TAG + _varint(score_length) + genre + _PROBABILITY_TAG)
        self._prefixes = prefixes
        lengths = np.array([len(prefix) for prefix in prefixes], dtype=np.int64)
        self._table = np.frombuffer(b"".join(prefixes), dtype=np.uint8)
        self._prefix_length = lengths
        self._prefix_start = np.cumsum(lengths) - lengths
        self.classes = len(prefixes)

    def encode(self, probabilities: FloatArray, top_k: int) -> bytes:
        """Rows ranked by probability, highest first, ``top_k`` kept (0: all), as wire bytes."""
        rows, classes = probabilities.shape
        if classes != self.classes:
            raise ValueError(f"expected {self.classes} classes, got {classes}")
        keep = classes if top_k == 0 else min(top_k, classes)
        if rows <= PYTHON_MAX_ROWS:
            return self._encode_few(probabilities, keep)
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :keep]
        chosen = np.take_along_axis(probabilities, order, axis=1).astype("<f4", copy=False)
        body = (self._prefix_length[order] + 4).sum(axis=1)
        header = np.zeros((rows, 4), dtype=np.uint8)
        header[:, 0] = _RESULTS_TAG
        header[:, 1] = (body & 0x7F) | np.where(body >= 1 << 7, 0x80, 0)
        header[:, 2] = ((body >> 7) & 0x7F) | np.where(body >= 1 << 14, 0x80, 0)
        header[:, 3] = body >> 14  # bodies stay far below 2**21
        header_length = 2 + (body >= 1 << 7) + (body >= 1 << 14)

        floats_at = self._table.size
        headers_at = floats_at + chosen.size * 4
        source = np.concatenate(
            [self._table, np.ascontiguousarray(chosen).view(np.uint8).ravel(), header.ravel()]
        )
        starts = np.empty((rows, 1 + 2 * keep), dtype=np.int64)
        lengths = np.empty_like(starts)
        starts[:, 0] = headers_at + 4 * np.arange(rows)
        lengths[:, 0] = header_length
        starts[:, 1::2] = self._prefix_start[order]
        lengths[:, 1::2] = self._prefix_length[order]
        starts[:, 2::2] = floats_at + 4 * np.arange(rows * keep).reshape(rows, keep)
        lengths[:, 2::2] = 4
        starts, lengths = starts.ravel(), lengths.ravel()
        placed = np.cumsum(lengths) - lengths
        gather = np.repeat(starts - placed, lengths) + np.arange(int(lengths.sum()))
        return source[gather].tobytes()

    def _encode_few(self, probabilities: FloatArray, keep: int) -> bytes:
        """The same bytes as the array path, joined in Python (sorting is stable both ways)."""
        prefixes, out = self._prefixes, []
        for row in probabilities.tolist():
            order = sorted(range(len(row)), key=row.__getitem__, reverse=True)[:keep]
            body = b"".join([prefixes[i] + _FLOAT.pack(row[i]) for i in order])
            out.append(bytes((_RESULTS_TAG,)) + _varint(len(body)) + body)
        return b"".join(out)


@lru_cache(maxsize=64)
def results_encoder(labels: tuple[str, ...]) -> ResultsEncoder:
    return ResultsEncoder(labels)
