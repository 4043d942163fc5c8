"""The numpy wire encoder gives exactly the bytes the plain protobuf path builds."""

from __future__ import annotations

import numpy as np
import pytest

from genre.v1 import genre_pb2
from server.features import ranked
from server.wire import PYTHON_MAX_ROWS, results_encoder
from training.features.gtzan_data import GTZAN_GENRES

LABELS = GTZAN_GENRES


@pytest.mark.parametrize("rows", [1, 3, PYTHON_MAX_ROWS, PYTHON_MAX_ROWS + 1, 300])
@pytest.mark.parametrize("top_k", [0, 1, 3, 10, 50])
def test_numpy_encoded_results_equal_built_messages(rows: int, top_k: int) -> None:
    probabilities = np.random.default_rng(rows).dirichlet(np.ones(10), rows).astype(np.float32)
    probabilities[0, 4] = 0.0  # proto3 drops zeros; the merged message must too
    probabilities[-1, 2] = probabilities[-1, 7]  # a tie keeps label order on both paths
    built = genre_pb2.ClassifyFeaturesResponse(results=ranked(probabilities, LABELS, top_k))
    merged = genre_pb2.ClassifyFeaturesResponse()
    merged.MergeFromString(results_encoder(LABELS).encode(probabilities, top_k))
    assert merged == built
    assert merged.SerializeToString() == built.SerializeToString()


def test_long_and_non_ascii_labels_encode_correctly() -> None:
    labels = ("x" * 300, "música", "b")
    probabilities = np.random.default_rng(0).dirichlet(np.ones(3), 4).astype(np.float32)
    merged = genre_pb2.ClassifyFeaturesResponse()
    merged.MergeFromString(results_encoder(labels).encode(probabilities, 0))
    assert merged == genre_pb2.ClassifyFeaturesResponse(results=ranked(probabilities, labels, 0))
