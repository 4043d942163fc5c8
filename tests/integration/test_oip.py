"""The Open Inference Protocol (KServe v2) beside genre.v1, on one real server.

These talk to the server with stubs compiled from the same contract Triton ships (their
descriptors equal ``tritonclient``'s: tests/unit/test_triton_contract.py), so the bytes on the
wire are what ``tritonclient`` sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from genre.inference import grpc_service_pb2 as v2
from genre.inference import grpc_service_pb2_grpc as v2_grpc
from genre.v1 import genre_pb2, genre_pb2_grpc
from server.app import App, create_server
from server.oip.tensors import raw_bytes
from tests.support.checkpoints import (
    AUDIO_LABELS,
    FEATURE_NAMES,
    LABELS,
    TINY_FRONTEND,
    example_row,
    tiny_stream_config,
    write_tiny_audio_model,
    write_tiny_model,
)
from tests.support.harness import loopback_config, sample_value, scrape
from tests.support.streams import float_clip_requests, in_label_order
from tests.support.synthetic_audio import pcm_s16le, synth_clip

ROWS = np.array(
    [[example_row(tempo=t)[name] for name in FEATURE_NAMES] for t in (90.0, 128.0, 170.0)],
    dtype="<f4",
)


@pytest.fixture
async def served(
    tmp_path: Path,
) -> AsyncIterator[
    tuple[v2_grpc.GRPCInferenceServiceAsyncStub, genre_pb2_grpc.GenreClassifierAsyncStub]
]:
    repository = tmp_path / "models"
    write_tiny_model(repository, seed=1)
    write_tiny_model(repository, seed=2)
    write_tiny_audio_model(repository)
    app: App = await create_server(loopback_config(repository))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            yield (
                v2_grpc.GRPCInferenceServiceStub(channel),
                genre_pb2_grpc.GenreClassifierStub(channel),
            )
    finally:
        await app.drain(grace=1.0)


def features_request(rows: np.ndarray, **fields: object) -> v2.ModelInferRequest:
    request = v2.ModelInferRequest(model_name="tiny-mlp", id="call-1", **fields)  # type: ignore[arg-type]
    request.inputs.add(name="FEATURES", datatype="FP32", shape=list(rows.shape))
    request.raw_input_contents.append(rows.astype("<f4").tobytes())
    return request


def outputs(reply: v2.ModelInferResponse) -> dict[str, bytes]:
    return {
        tensor.name: raw
        for tensor, raw in zip(reply.outputs, reply.raw_output_contents, strict=True)
    }


async def test_liveness_readiness_and_metadata(
    served: tuple[v2_grpc.GRPCInferenceServiceAsyncStub, object],
) -> None:
    stub, _ = served
    assert (await stub.ServerLive(v2.ServerLiveRequest())).live
    assert (await stub.ServerReady(v2.ServerReadyRequest())).ready
    assert (await stub.ModelReady(v2.ModelReadyRequest(name="tiny-mlp"))).ready
    assert (await stub.ModelReady(v2.ModelReadyRequest(name="tiny-mlp", version="1"))).ready
    assert not (await stub.ModelReady(v2.ModelReadyRequest(name="tiny-mlp", version="9"))).ready
    assert not (await stub.ModelReady(v2.ModelReadyRequest(name="no-such-model"))).ready
    server = await stub.ServerMetadata(v2.ServerMetadataRequest())
    assert server.name == "genre-serve"
    meta = await stub.ModelMetadata(v2.ModelMetadataRequest(name="tiny-mlp"))
    assert (meta.name, list(meta.versions), meta.platform) == ("tiny-mlp", ["1", "2"], "pytorch")
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("FEATURES", "FP32", [-1, len(FEATURE_NAMES)]),
        ("FEATURE_NAMES", "BYTES", [len(FEATURE_NAMES)]),
    ]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [
        ("PROBABILITIES", "FP32", [-1, len(LABELS)]),
        ("LABEL", "BYTES", [-1]),
        ("ABSTENTION", "BYTES", [-1]),
    ]
    audio = await stub.ModelMetadata(v2.ModelMetadataRequest(name="tiny-audio"))
    assert [(t.name, t.datatype, list(t.shape)) for t in audio.inputs] == [
        ("AUDIO", "FP32", [1, -1])
    ]


async def test_features_infer_answers_what_genre_v1_answers(
    served: tuple[v2_grpc.GRPCInferenceServiceAsyncStub, genre_pb2_grpc.GenreClassifierAsyncStub],
) -> None:
    stub, v1 = served
    reply = await stub.ModelInfer(features_request(ROWS))
    assert (reply.model_name, reply.model_version, reply.id) == ("tiny-mlp", "2", "call-1")
    raw = outputs(reply)
    probabilities = np.frombuffer(raw["PROBABILITIES"], dtype="<f4").reshape(len(ROWS), -1)
    dense = genre_pb2.DenseFeatures(feature_names=FEATURE_NAMES, values=ROWS.ravel().tolist())
    expected = await v1.ClassifyFeatures(
        genre_pb2.ClassifyFeaturesRequest(model=genre_pb2.ModelRef(name="tiny-mlp"), dense=dense)
    )
    for row, result in enumerate(expected.results):
        by_genre = {score.genre: score.probability for score in result.scores}
        np.testing.assert_allclose(probabilities[row], [by_genre[g] for g in LABELS], atol=1e-6)
    top = [LABELS[int(i)] for i in np.argmax(probabilities, axis=1)]
    assert raw["LABEL"] == raw_bytes(top)


async def test_typed_contents_and_own_column_order_give_the_same_answer(
    served: tuple[v2_grpc.GRPCInferenceServiceAsyncStub, object],
) -> None:
    stub, _ = served
    baseline = outputs(await stub.ModelInfer(features_request(ROWS)))["PROBABILITIES"]
    order = list(reversed(FEATURE_NAMES))
    reordered = ROWS[:, [FEATURE_NAMES.index(name) for name in order]]
    request = v2.ModelInferRequest(model_name="tiny-mlp")
    request.inputs.add(
        name="FEATURES", datatype="FP32", shape=list(reordered.shape)
    ).contents.fp32_contents.extend(reordered.ravel().tolist())
    request.inputs.add(
        name="FEATURE_NAMES", datatype="BYTES", shape=[len(order)]
    ).contents.bytes_contents.extend(name.encode() for name in order)
    request.outputs.add(name="PROBABILITIES")
    reply = await stub.ModelInfer(request)
    assert [tensor.name for tensor in reply.outputs] == ["PROBABILITIES"]
    np.testing.assert_allclose(
        np.frombuffer(reply.raw_output_contents[0], "<f4"),
        np.frombuffer(baseline, "<f4"),
        atol=1e-6,
    )


async def test_an_imputable_feature_may_be_left_out_by_name(
    served: tuple[v2_grpc.GRPCInferenceServiceAsyncStub, object],
) -> None:
    stub, _ = served
    names = [name for name in FEATURE_NAMES if name != "key"]
    request = v2.ModelInferRequest(model_name="tiny-mlp")
    request.inputs.add(name="FEATURES", datatype="FP32", shape=[1, len(names)])
    request.inputs.add(name="FEATURE_NAMES", datatype="BYTES", shape=[len(names)])
    request.raw_input_contents.extend([ROWS[:1, :4].tobytes(), raw_bytes(names)])
    reply = await stub.ModelInfer(request)
    assert np.frombuffer(outputs(reply)["PROBABILITIES"], "<f4").sum() == pytest.approx(
        1.0, abs=1e-5
    )


def bad(**change: object) -> v2.ModelInferRequest:
    request = features_request(ROWS)
    if "datatype" in change:
        request.inputs[0].datatype = str(change["datatype"])
    if "shape" in change:
        del request.inputs[0].shape[:]
        request.inputs[0].shape.extend(change["shape"])  # type: ignore[arg-type]
    if "extra" in change:
        request.inputs.add(name=str(change["extra"]), datatype="FP32", shape=[1])
        request.raw_input_contents.append(b"\0\0\0\0")
    if "model" in change:
        request.model_name = str(change["model"])
    if "output" in change:
        request.outputs.add(name=str(change["output"]))
    return request


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        pytest.param(bad(datatype="INT64"), grpc.StatusCode.INVALID_ARGUMENT,
                     "FEATURES: datatype must be FP32", id="dtype"),
        pytest.param(bad(shape=[3, 4]), grpc.StatusCode.INVALID_ARGUMENT,
                     "FEATURES: 60 raw bytes for shape [3, 4]", id="shape"),
        pytest.param(bad(shape=[15]), grpc.StatusCode.INVALID_ARGUMENT,
                     "FEATURES: shape must be [N, F]", id="rank"),
        pytest.param(bad(extra="AUDIO"), grpc.StatusCode.INVALID_ARGUMENT,
                     "inputs: unknown input 'AUDIO'", id="unknown-input"),
        pytest.param(bad(model="no-such-model"), grpc.StatusCode.NOT_FOUND,
                     "model_name: no model 'no-such-model'", id="unknown-model"),
        pytest.param(bad(output="SCORES"), grpc.StatusCode.INVALID_ARGUMENT,
                     "outputs: unknown output 'SCORES'", id="unknown-output"),
    ],
)  # fmt: skip
async def test_bad_tensors_get_a_precise_status_naming_the_tensor(
    served: tuple[v2_grpc.GRPCInferenceServiceAsyncStub, object],
    request_: v2.ModelInferRequest,
    code: grpc.StatusCode,
    message: str,
) -> None:
    stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ModelInfer(request_)
    assert error.value.code() == code
    assert message in (error.value.details() or "")


def audio_request(clip: np.ndarray, **parameters: object) -> v2.ModelInferRequest:
    request = v2.ModelInferRequest(model_name="tiny-audio")
    request.inputs.add(name="AUDIO", datatype="FP32", shape=[1, clip.size])
    request.raw_input_contents.append(clip.astype("<f4").tobytes())
    for name, value in parameters.items():
        if isinstance(value, bool):
            request.parameters[name].bool_param = value
        elif isinstance(value, int):
            request.parameters[name].int64_param = value
        else:
            request.parameters[name].string_param = str(value)
    return request


async def v1_stream(
    v1: genre_pb2_grpc.GenreClassifierAsyncStub, clip: np.ndarray
) -> list[genre_pb2.ClassifyAudioStreamResponse]:
    return [reply async for reply in v1.ClassifyAudioStream(iter(float_clip_requests(clip)))]


async def test_a_whole_clip_gets_the_track_answer_of_genre_v1(
    served: tuple[v2_grpc.GRPCInferenceServiceAsyncStub, genre_pb2_grpc.GenreClassifierAsyncStub],
) -> None:
    stub, v1 = served
    clip = synth_clip("metal", 1.2, TINY_FRONTEND.sample_rate, seed=4)
    reply = await stub.ModelInfer(audio_request(clip, sample_rate=TINY_FRONTEND.sample_rate))
    raw = outputs(reply)
    got = np.frombuffer(raw["PROBABILITIES"], "<f4")
    final = (await v1_stream(v1, clip))[-1]
    np.testing.assert_allclose(got, in_label_order(final.track), atol=1e-6)
    assert raw["LABEL"] == raw_bytes([AUDIO_LABELS[int(np.argmax(got))]])
    refused = await invalid_argument(stub.ModelInfer(audio_request(clip)))
    assert "parameters.sample_rate: required" in refused


async def invalid_argument(call: Any) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return error.value.details() or ""


async def test_interleaved_sequences_answer_as_genre_v1_streams_do(
    served: tuple[v2_grpc.GRPCInferenceServiceAsyncStub, genre_pb2_grpc.GenreClassifierAsyncStub],
) -> None:
    stub, v1 = served
    rate = TINY_FRONTEND.sample_rate
    clips = {
        7: synth_clip("metal", 1.0, rate, seed=1),
        8: synth_clip("classical", 1.0, rate, seed=2),
    }
    halves = {key: np.array_split(clip, 2) for key, clip in clips.items()}
    requests = [
        audio_request(halves[7][0], sequence_id=7, sequence_start=True, sample_rate=rate),
        audio_request(halves[8][0], sequence_id=8, sequence_start=True, sample_rate=rate),
        audio_request(halves[7][1], sequence_id=7, sequence_end=True),
        audio_request(halves[8][1], sequence_id=8, sequence_end=True),
        audio_request(halves[8][1], sequence_id=8),  # already ended: an error, the stream goes on
    ]
    replies = [reply async for reply in stub.ModelStreamInfer(iter(requests))]
    errors = [reply.error_message for reply in replies if reply.error_message]
    assert errors == ["INVALID_ARGUMENT: parameters.sequence_id: no open sequence '8'; "
                      "start one with sequence_start"]  # fmt: skip
    for key, clip in clips.items():
        ours = [
            reply.infer_response
            for reply in replies
            if not reply.error_message
            and reply.infer_response.parameters["sequence_id"].string_param == str(key)
        ]
        theirs = await v1_stream(v1, clip)
        assert [r.parameters["final"].bool_param for r in ours] == [r.final for r in theirs]
        for mine, reference in zip(ours, theirs, strict=True):
            assert mine.parameters["window_start_seconds"].double_param == pytest.approx(
                reference.window_start_seconds
            )
            expected = reference.track if reference.final else reference.window
            np.testing.assert_allclose(
                np.frombuffer(outputs(mine)["PROBABILITIES"], "<f4"),
                in_label_order(expected),
                atol=1e-6,
            )


async def test_unserved_methods_say_unimplemented(
    served: tuple[v2_grpc.GRPCInferenceServiceAsyncStub, object],
) -> None:
    stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.RepositoryIndex(v2.RepositoryIndexRequest())
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_model_config_states_the_signature_as_triton_does(
    served: tuple[v2_grpc.GRPCInferenceServiceAsyncStub, object],
) -> None:
    stub, _ = served
    features = (await stub.ModelConfig(v2.ModelConfigRequest(name="tiny-mlp"))).config
    assert (features.name, features.platform, features.max_batch_size) == ("tiny-mlp", "pytorch", 0)
    assert [(i.name, list(i.dims), i.optional) for i in features.input] == [
        ("FEATURES", [-1, len(FEATURE_NAMES)], False),
        ("FEATURE_NAMES", [len(FEATURE_NAMES)], True),
    ]
    assert [o.name for o in features.output] == ["PROBABILITIES", "LABEL", "ABSTENTION"]
    assert features.WhichOneof("scheduling_choice") is None
    audio = (await stub.ModelConfig(v2.ModelConfigRequest(name="tiny-audio"))).config
    assert audio.WhichOneof("scheduling_choice") == "sequence_batching"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ModelConfig(v2.ModelConfigRequest(name="no-such-model"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_undecodable_bytes_get_invalid_argument_on_every_method(
    app: App, channel: grpc.aio.Channel
) -> None:
    for method in ("ServerLive", "ServerReady", "ModelReady", "ModelInfer"):
        call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}", None, None)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call(b"\xff\xff\xff", timeout=5)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
        assert "the bytes are not a valid inference." in (error.value.details() or "")


async def test_calls_are_counted_with_their_protocol(app: App, channel: grpc.aio.Channel) -> None:
    await v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(features_request(ROWS))
    dense = genre_pb2.DenseFeatures(feature_names=FEATURE_NAMES, values=[1.0] * 5)
    await genre_pb2_grpc.GenreClassifierStub(channel).ClassifyFeatures(
        genre_pb2.ClassifyFeaturesRequest(model=genre_pb2.ModelRef(name="tiny-mlp"), dense=dense)
    )
    text = scrape(app.metrics_port)
    v2_calls = {"method": "ModelInfer", "status": "OK", "protocol": "v2"}
    v1_calls = {"method": "ClassifyFeatures", "status": "OK", "protocol": "genre.v1"}
    assert sample_value(text, "genre_requests_total", v2_calls) == 1
    assert sample_value(text, "genre_requests_total", v1_calls) == 1


async def test_int16_audio_as_typed_contents_scores_as_genre_v1_does(
    served: tuple[v2_grpc.GRPCInferenceServiceAsyncStub, genre_pb2_grpc.GenreClassifierAsyncStub],
) -> None:
    stub, v1 = served
    clip = synth_clip("disco", 1.2, TINY_FRONTEND.sample_rate, seed=6)
    samples = np.frombuffer(pcm_s16le(clip), dtype="<i2")
    request = v2.ModelInferRequest(model_name="tiny-audio")
    audio = request.inputs.add(name="AUDIO", datatype="INT16", shape=[1, samples.size])
    audio.contents.int_contents.extend(samples.tolist())
    request.parameters["sample_rate"].int64_param = TINY_FRONTEND.sample_rate
    got = np.frombuffer(outputs(await stub.ModelInfer(request))["PROBABILITIES"], "<f4")
    config = tiny_stream_config()
    chunk = genre_pb2.ClassifyAudioStreamRequest(audio=genre_pb2.AudioChunk(data=pcm_s16le(clip)))
    final = [reply async for reply in v1.ClassifyAudioStream(iter([config, chunk]))][-1]
    np.testing.assert_allclose(got, in_label_order(final.track), atol=1e-6)
