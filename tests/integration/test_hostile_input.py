"""Property-based hostile input against a real server process: every request gets a documented
status, never INTERNAL or UNKNOWN, and the server stays healthy throughout."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.message import DecodeError, Message
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


SERVED = {"tiny-mlp": "features", "tiny-audio": "audio"}


@dataclass(frozen=True)
class Method:
    path: str
    request: type[Message]
    streaming: bool


METHODS = [
    Method("/genre.v1.GenreClassifier/ClassifyFeatures", genre_pb2.ClassifyFeaturesRequest, False),
    Method("/genre.v1.GenreClassifier/ListModels", genre_pb2.ListModelsRequest, False),
    Method(
        "/genre.v1.GenreClassifier/ClassifyAudioStream", genre_pb2.ClassifyAudioStreamRequest, True
    ),
]


def parse(request: type[Message], data: bytes) -> Message | None:
    """The bytes as the server's own parser reads them (the same generated class), or None."""
    try:
        return request.FromString(data)
    except DecodeError:
        return None


def model_status(ref: genre_pb2.ModelRef, kind: str) -> grpc.StatusCode | None:
    """What naming ``ref`` for a ``kind`` call gets, or None when a served model of that kind
    answers and the rest of the request decides."""
    if not ref.name:
        return grpc.StatusCode.INVALID_ARGUMENT
    if ref.name not in SERVED:
        return grpc.StatusCode.NOT_FOUND
    if ref.version and not (ref.version.isascii() and ref.version.isdigit()):
        return grpc.StatusCode.NOT_FOUND
    if ref.version and int(ref.version) != 1:
        return grpc.StatusCode.NOT_FOUND
    if SERVED[ref.name] != kind:
        return grpc.StatusCode.INVALID_ARGUMENT
    return None


def first_message_status(method: Method, message: Message) -> grpc.StatusCode | None:
    """The status a well-formed first message settles on its own, or None if the rest decides."""
    if isinstance(message, genre_pb2.ListModelsRequest):
        return grpc.StatusCode.OK
    if isinstance(message, genre_pb2.ClassifyFeaturesRequest):
        return model_status(message.model, "features")
    assert isinstance(message, genre_pb2.ClassifyAudioStreamRequest), method
    if message.WhichOneof("payload") != "config":
        return grpc.StatusCode.FAILED_PRECONDITION
    return model_status(message.config.model, "audio")


def raw_call(
    channel: grpc.Channel, method: Method, payloads: list[bytes]
) -> tuple[grpc.StatusCode, str]:
    """Sends bytes as they are: the code and message the server answers."""
    try:
        if method.streaming:
            call = channel.stream_stream(method.path, None, None)
            for _ in call(iter(payloads), timeout=20):
                pass
        else:
            channel.unary_unary(method.path, None, None)(payloads[0], timeout=10)
    except grpc.RpcError as error:
        return error.code(), str(error.details())
    return grpc.StatusCode.OK, ""


def typed_call(channel: grpc.Channel, method: Method, messages: list[Message]) -> grpc.StatusCode:
    """The same messages sent by the generated stub, as a well-behaved client would."""
    stub = genre_pb2_grpc.GenreClassifierStub(channel)

    def run() -> None:
        first = messages[0]
        if isinstance(first, genre_pb2.ListModelsRequest):
            stub.ListModels(first, timeout=10)
        elif isinstance(first, genre_pb2.ClassifyFeaturesRequest):
            stub.ClassifyFeatures(first, timeout=10)
        else:
            stream = [m for m in messages if isinstance(m, genre_pb2.ClassifyAudioStreamRequest)]
            assert len(stream) == len(messages), method
            for _ in stub.ClassifyAudioStream(iter(stream), timeout=20):
                pass

    return status_of(run)


served_requests = st.one_of(
    st.just(
        genre_pb2.ClassifyFeaturesRequest(
            model=genre_pb2.ModelRef(name="tiny-mlp"),
            rows=[genre_pb2.FeatureRow(features=example_row())],
        )
    ),
    st.builds(
        lambda rate, encoding, channels: genre_pb2.ClassifyAudioStreamRequest(
            config=genre_pb2.StreamConfig(
                model=genre_pb2.ModelRef(name="tiny-audio"),
                sample_rate=rate,
                encoding=encoding,
                channels=channels,
            )
        ),
        st.sampled_from([8000, 16000]),
        st.sampled_from([genre_pb2.PCM_S16LE, genre_pb2.PCM_F32LE]),
        st.integers(1, 2),
    ),
)
valid_requests = st.one_of(
    served_requests,
    st.builds(
        lambda name, version: genre_pb2.ClassifyFeaturesRequest(
            model=genre_pb2.ModelRef(name=name, version=version),
            rows=[genre_pb2.FeatureRow(features=example_row())],
        ),
        models,
        versions,
    ),
    configs.map(lambda config: genre_pb2.ClassifyAudioStreamRequest(config=config)),
    st.binary(max_size=300).map(
        lambda data: genre_pb2.ClassifyAudioStreamRequest(audio=genre_pb2.AudioChunk(data=data))
    ),
).map(lambda message: message.SerializeToString())


def damaged(data: bytes, cut: int, flip: int) -> bytes:
    """Cut short at ``cut`` and one byte inverted at ``flip`` (each when inside the bytes)."""
    kept = bytearray(data[:cut])
    if flip < len(kept):
        kept[flip] ^= 0xFF
    return bytes(kept)


raw_payloads = st.one_of(
    st.binary(max_size=300),
    valid_requests,
    st.builds(damaged, valid_requests, st.integers(0, 400), st.integers(0, 400)),
)


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.path.rsplit("/", 1)[1])
@HOSTILE
@given(payloads=st.lists(raw_payloads, min_size=1, max_size=4))
def test_raw_bytes_get_the_status_of_what_they_parse_as(
    channel: grpc.Channel, method: Method, payloads: list[bytes]
) -> None:
    """Bytes go out unparsed; each input's status is decided here, exactly.

    The server reads a call's messages in order. Bytes that do not parse as the method's request
    type get INVALID_ARGUMENT naming the type. Bytes that parse (protobuf accepts much: the empty
    string is a valid empty message) are that message, answered as the same well-formed messages
    sent by the generated stub are: statuses a first message settles on its own are checked
    against their rule (no model name, an unknown model or version, the wrong kind, a stream not
    opened by its config, ListModels), and a request a served model answers gets exactly the stub's
    status, up to the first message that does not parse.
    """
    sent = payloads if method.streaming else payloads[:1]
    code, details = raw_call(channel, method, sent)
    parsed: list[Message] = []
    for data in sent:
        message = parse(method.request, data)
        if message is None:
            break
        parsed.append(message)
    if not parsed:
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        name = method.request.DESCRIPTOR.full_name
        assert details == f"request: the bytes are not a valid {name}"
        return
    settled = first_message_status(method, parsed[0])
    well_formed = typed_call(channel, method, parsed)
    if settled is not None:
        assert well_formed == settled
    if len(parsed) < len(sent) and well_formed == grpc.StatusCode.OK:
        assert code == grpc.StatusCode.INVALID_ARGUMENT  # the first unparsable message
    else:
        assert code == well_formed
    assert code in STREAM_STATUSES


@pytest.mark.parametrize("version", ["²", "١", "1.0", " 1", "-1"])
def test_versions_that_are_not_plain_digits_are_not_found(
    channel: grpc.Channel, version: str
) -> None:
    """``'²'.isdigit()`` is true and ``int('²')`` fails: once an INTERNAL."""
    request = genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name="tiny-mlp", version=version),
        rows=[genre_pb2.FeatureRow(features=example_row())],
    )
    stub = genre_pb2_grpc.GenreClassifierStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ClassifyFeatures(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_server_is_still_healthy_after_all_of_it(channel: grpc.Channel) -> None:
    assert_healthy(channel)
