"""The blocking client against a real gRPC server hosting the scripted servicer."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from client import GenreClient, GenreClientError, ModelInfo, RetryPolicy
from genre.v1 import genre_pb2, genre_pb2_grpc
from tests.client.conftest import FAST_RETRY
from tests.client.scripted import LABELS, ScriptedServicer, expected_scores

HEADER_ROUNDING = 0.05


def test_retries_unavailable_until_an_answer(
    client: GenreClient, servicer: ScriptedServicer
) -> None:
    servicer.fail("ListModels", grpc.StatusCode.UNAVAILABLE, "warming up", times=2)

    models = client.list_models()

    assert servicer.calls["ListModels"] == 3
    assert (models[0].name, models[0].version) == ("gtzan-mlp", "1")


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND])
def test_never_retries_other_statuses_and_carries_code_and_details(
    client: GenreClient, servicer: ScriptedServicer, code: grpc.StatusCode
) -> None:
    servicer.fail("ClassifyFeatures", code, "no model 'nope'")

    with pytest.raises(GenreClientError) as raised:
        client.classify_features("nope", [{"tempo": 1.0}])

    assert servicer.calls["ClassifyFeatures"] == 1
    assert raised.value.code is code
    assert raised.value.details == "no model 'nope'"
    assert raised.value.attempts == 1
    assert raised.value.method == "ClassifyFeatures"
    assert isinstance(raised.value.__cause__, grpc.RpcError)


def test_gives_up_after_max_attempts(grpc_addr: str, servicer: ScriptedServicer) -> None:
    servicer.fail("ListModels", grpc.StatusCode.UNAVAILABLE, "down", times=10)
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.002)

    with GenreClient(grpc_addr, retry=policy) as genre, pytest.raises(GenreClientError) as raised:
        genre.list_models()

    assert servicer.calls["ListModels"] == 3
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    assert raised.value.attempts == 3


def test_sends_the_default_deadline_and_a_per_call_override(
    grpc_addr: str, servicer: ScriptedServicer
) -> None:
    with GenreClient(grpc_addr, deadline_seconds=5.0) as genre:
        genre.list_models()
        genre.list_models(timeout=1.5)

    default, override = servicer.time_remaining
    # gRPC core rounds the grpc-timeout header up to a coarser unit, so allow a little over.
    assert default is not None
    assert 4.0 < default <= 5.0 + HEADER_ROUNDING
    assert override is not None
    assert 0.5 < override <= 1.5 + HEADER_ROUNDING


def test_a_slow_answer_is_deadline_exceeded_and_not_retried(
    client: GenreClient, servicer: ScriptedServicer
) -> None:
    servicer.delay_seconds = 0.3

    with pytest.raises(GenreClientError) as raised:
        client.list_models(timeout=0.05)

    assert raised.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert raised.value.attempts == 1


def test_dense_values_round_trip_exactly(client: GenreClient, servicer: ScriptedServicer) -> None:
    rng = np.random.default_rng(7)
    values = rng.standard_normal((5, 3)).astype(np.float32)
    names = ["tempo", "rms_mean", "chroma_stft_mean"]

    result = client.classify_dense("gtzan-mlp", names, values, version="1", top_k=2)

    (request,) = servicer.feature_requests
    assert list(request.dense.feature_names) == names
    assert not request.rows
    sent = np.asarray(request.dense.values, dtype=np.float32).reshape(-1, len(names))
    np.testing.assert_array_equal(sent, values)
    assert (request.model.version, request.top_k) == ("1", 2)
    assert result.predictions == [expected_scores(row.tolist(), 2) for row in values]


def test_dense_rejects_a_shape_that_does_not_match_the_names(client: GenreClient) -> None:
    with pytest.raises(ValueError, match="3 columns but 2 feature names"):
        client.classify_dense("gtzan-mlp", ["a", "b"], np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        client.classify_dense("gtzan-mlp", ["a"], np.zeros(4, np.float32))


def test_named_rows_are_sent_as_maps_and_answers_come_back_sorted(
    client: GenreClient, servicer: ScriptedServicer
) -> None:
    rows = [{"tempo": 1.0}, {"tempo": 1.5, "rms_mean": 0.5}, {}]

    result = client.classify_features("gtzan-mlp", rows)

    (request,) = servicer.feature_requests
    assert [dict(row.features) for row in request.rows] == rows
    assert not request.HasField("dense")
    assert (result.model, result.version) == ("gtzan-mlp", "2")
    for row in result.predictions:
        probabilities = [p for _, p in row]
        assert probabilities == sorted(probabilities, reverse=True)
    assert result.top() == [LABELS[1], LABELS[2], LABELS[0]]


def test_list_models_mirrors_model_version_info(client: GenreClient) -> None:
    mlp, _, cnn = client.list_models()

    assert isinstance(mlp, ModelInfo)
    assert (mlp.kind, mlp.is_default, mlp.labels) == ("features", False, LABELS)
    assert mlp.feature_names == ("tempo", "rms_mean", "chroma_stft_mean")
    assert [f.imputable for f in mlp.features] == [False, True, True]
    assert mlp.metrics == {"accuracy": 0.75, "macro_f1": 0.7}
    assert mlp.audio is None
    assert cnn.kind == "audio"
    assert cnn.audio is not None
    assert cnn.audio.sample_rate == 22050


def test_exposes_the_raw_stub(
    client: GenreClient, grpc_stub: genre_pb2_grpc.GenreClassifierStub
) -> None:
    """The client's stub and pytest-grpc's stub on its own channel see the same server."""
    direct = client.stub.ListModels(genre_pb2.ListModelsRequest(), timeout=5)
    assert direct == grpc_stub.ListModels(genre_pb2.ListModelsRequest(), timeout=5)


def test_streams_config_first_then_every_chunk_in_order(
    client: GenreClient, servicer: ScriptedServicer
) -> None:
    chunks = [b"\x01\x02" * 50, b"", b"\x03" * 7, b"\x04\x05\x06"]

    updates = list(
        client.stream_audio(
            "gtzan-cnn", chunks, sample_rate=16000, encoding="f32le", channels=2, top_k=3
        )
    )

    config, *audio = servicer.stream_requests
    assert config.WhichOneof("payload") == "config"
    assert config.config.model.name == "gtzan-cnn"
    assert (config.config.sample_rate, config.config.channels) == (16000, 2)
    assert (config.config.encoding, config.config.top_k) == (genre_pb2.PCM_F32LE, 3)
    assert all(r.WhichOneof("payload") == "audio" for r in audio)
    assert b"".join(r.audio.data for r in audio) == b"".join(chunks)
    assert [r.audio.data for r in audio] == [c for c in chunks if c]
    assert [u.final for u in updates] == [False, False, False, True]
    assert updates[0].window == expected_scores([1])
    assert (updates[-1].audio_seconds, updates[-1].padded) == (3.0, False)


def test_stream_reraises_the_chunk_sources_own_error(client: GenreClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"\x00" * 10
        raise OSError("microphone unplugged")

    with pytest.raises(OSError, match="microphone unplugged"):
        list(client.stream_audio("gtzan-cnn", chunks(), sample_rate=8000))


def test_stream_checks_its_arguments_when_called(client: GenreClient) -> None:
    with pytest.raises(ValueError, match="encoding"):
        client.stream_audio("m", [], sample_rate=8000, encoding="mp3")  # type: ignore[arg-type]


def test_unreachable_target_is_unavailable_after_retries(servicer: ScriptedServicer) -> None:
    with (
        GenreClient("127.0.0.1:1", retry=FAST_RETRY) as genre,
        pytest.raises(GenreClientError) as raised,
    ):
        genre.list_models(timeout=2.0)
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    assert raised.value.attempts == FAST_RETRY.max_attempts


def test_stream_error_status_surfaces_as_client_error(
    client: GenreClient, servicer: ScriptedServicer
) -> None:
    servicer.fail("ClassifyAudioStream", grpc.StatusCode.INVALID_ARGUMENT, "sample_rate 4000")

    with pytest.raises(GenreClientError) as raised:
        list(client.stream_audio("gtzan-cnn", [b"\x00\x00"], sample_rate=4000))

    assert (raised.value.code, raised.value.details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "sample_rate 4000",
    )


def test_leaving_a_stream_early_cancels_it(client: GenreClient) -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b"\x00" * 320

    updates = client.stream_audio("gtzan-cnn", endless(), sample_rate=8000)
    first = next(updates)
    updates.close()

    assert first.final is False
    assert client.list_models()  # the channel is still usable
