"""Property-based hostile input against a real server process: every request gets a documented
status, never INTERNAL or UNKNOWN, and the server stays healthy throughout."""

from __future__ import annotations

import math
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.server_process import ServerProcess
from genre.v1 import genre_pb2, genre_pb2_grpc
from tests.support.checkpoints import (
    FEATURE_NAMES,
    example_row,
    write_tiny_audio_model,
    write_tiny_model,
)
from tests.support.harness import start_server_process

FEATURE_STATUSES = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
STREAM_STATUSES = FEATURE_STATUSES | {grpc.StatusCode.FAILED_PRECONDITION}
HOSTILE = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    repository = tmp_path_factory.mktemp("hostile") / "models"
    write_tiny_model(repository, "tiny-mlp")
    write_tiny_audio_model(repository, "tiny-audio")
    process = start_server_process(
        repository,
        {
            "GENRE_MAX_ROWS_PER_REQUEST": "64",
            "GENRE_MAX_CHUNK_BYTES": "4096",
            "GENRE_MAX_STREAM_SECONDS": "5",
        },
    )
    yield process
    assert process.stop() == 0


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as opened:
        yield opened


def status_of(call: object) -> grpc.StatusCode:
    try:
        if callable(call):
            call()
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    return grpc.StatusCode.OK


def assert_healthy(channel: grpc.Channel) -> None:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = genre_pb2_grpc.GenreClassifierStub(channel)
    request = genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name="tiny-mlp"),
        rows=[genre_pb2.FeatureRow(features=example_row())],
    )
    assert len(stub.ClassifyFeatures(request, timeout=5).results) == 1


values = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 5e-324, 1e300, -1e300, 3.5e38, math.nan, math.inf]
)
names = st.sampled_from(FEATURE_NAMES) | st.text(max_size=12)
rows = st.lists(st.dictionaries(names, values, max_size=8), max_size=70)
models = st.sampled_from(["tiny-mlp", "tiny-audio", "", "absent"]) | st.text(max_size=8)
versions = st.sampled_from(["", "1", "2", "-1", "99999999999999999999"]) | st.text(max_size=4)


@HOSTILE
@given(model=models, version=versions, feature_rows=rows, top_k=st.integers(0, 2**32 - 1))
def test_named_rows(
    channel: grpc.Channel,
    model: str,
    version: str,
    feature_rows: list[dict[str, float]],
    top_k: int,
) -> None:
    request = genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name=model, version=version),
        rows=[genre_pb2.FeatureRow(features=row) for row in feature_rows],
        top_k=top_k,
    )
    stub = genre_pb2_grpc.GenreClassifierStub(channel)
    assert status_of(lambda: stub.ClassifyFeatures(request, timeout=10)) in FEATURE_STATUSES


@HOSTILE
@given(
    columns=st.lists(names, max_size=8),
    cells=st.lists(st.floats(width=32), max_size=400),
)
def test_dense_shapes(channel: grpc.Channel, columns: list[str], cells: list[float]) -> None:
    request = genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name="tiny-mlp"),
        dense=genre_pb2.DenseFeatures(feature_names=columns, values=cells),
    )
    stub = genre_pb2_grpc.GenreClassifierStub(channel)
    assert status_of(lambda: stub.ClassifyFeatures(request, timeout=10)) in FEATURE_STATUSES


configs = st.builds(
    genre_pb2.StreamConfig,
    model=st.builds(genre_pb2.ModelRef, name=models, version=versions),
    sample_rate=st.sampled_from([0, 7999, 8000, 16000, 22050, 48000, 48001, 2**32 - 1])
    | st.integers(0, 2**32 - 1),
    encoding=st.integers(0, 3),
    channels=st.integers(0, 4),
    hop_seconds=st.floats(width=32),
    top_k=st.integers(0, 5),
)
messages = st.one_of(
    configs.map(lambda c: genre_pb2.ClassifyAudioStreamRequest(config=c)),
    st.binary(max_size=5000).map(
        lambda data: genre_pb2.ClassifyAudioStreamRequest(audio=genre_pb2.AudioChunk(data=data))
    ),
    st.just(genre_pb2.ClassifyAudioStreamRequest()),
)


@HOSTILE
@given(sequence=st.lists(messages, max_size=12), first=st.none() | configs)
def test_stream_message_sequences(
    channel: grpc.Channel,
    sequence: list[genre_pb2.ClassifyAudioStreamRequest],
    first: genre_pb2.StreamConfig | None,
) -> None:
    if first is not None:
        sequence = [genre_pb2.ClassifyAudioStreamRequest(config=first), *sequence]
    stub = genre_pb2_grpc.GenreClassifierStub(channel)

    def run() -> None:
        for _ in stub.ClassifyAudioStream(iter(sequence), timeout=20):
            pass

    assert status_of(run) in STREAM_STATUSES


METHODS = [
    ("/genre.v1.GenreClassifier/ClassifyFeatures", False),
    ("/genre.v1.GenreClassifier/ListModels", False),
    ("/genre.v1.GenreClassifier/ClassifyAudioStream", True),
]


@HOSTILE
@given(payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=4), which=st.integers(0, 2))
def test_raw_malformed_bytes(channel: grpc.Channel, payloads: list[bytes], which: int) -> None:
    path, streaming = METHODS[which]
    if streaming:
        call = channel.stream_stream(path, None, None)

        def run() -> None:
            for _ in call(iter(payloads), timeout=20):
                pass
    else:
        unary = channel.unary_unary(path, None, None)

        def run() -> None:
            unary(payloads[0], timeout=10)

    assert status_of(run) in STREAM_STATUSES


def test_the_server_is_still_healthy_after_all_of_it(channel: grpc.Channel) -> None:
    assert_healthy(channel)
