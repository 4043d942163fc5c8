"""``ModelStatistics`` (Open Inference Protocol) on real servers: Triton's fields per version,
equal to what /metrics says, and in worker processes counting every worker's calls.

tritonclient reads the same answer in tests/integration/test_tritonclient.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeAlias

import grpc
import numpy as np
import pytest

from genre.inference import grpc_service_pb2 as v2
from genre.inference import grpc_service_pb2_grpc as v2_grpc
from genre.v1 import genre_pb2, genre_pb2_grpc
from server.app import App, create_server
from server.oip.statistics import NANOSECONDS
from tests.support.checkpoints import (
    FEATURE_NAMES,
    TINY_FRONTEND,
    example_row,
    tiny_stream_config,
    write_tiny_audio_model,
    write_tiny_model,
)
from tests.support.harness import loopback_config, sample_value, scrape
from tests.support.synthetic_audio import pcm_s16le, synth_clip
from tests.support.workers import classify_over_both, connections, workers

# The async stubs exist for type checkers only (mypy-protobuf's .pyi), hence the string.
Stubs: TypeAlias = (
    "tuple[v2_grpc.GRPCInferenceServiceAsyncStub, genre_pb2_grpc.GenreClassifierAsyncStub, App]"
)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Stubs]:
    repository = tmp_path / "models"
    write_tiny_model(repository, seed=1)
    write_tiny_model(repository, seed=2)
    write_tiny_audio_model(repository)
    app = await create_server(loopback_config(repository))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            yield (
                v2_grpc.GRPCInferenceServiceStub(channel),
                genre_pb2_grpc.GenreClassifierStub(channel),
                app,
            )
    finally:
        await app.drain(grace=1.0)


def infer_request(rows: int, version: str = "", datatype: str = "FP32") -> v2.ModelInferRequest:
    values = np.array([[example_row()[name] for name in FEATURE_NAMES]] * rows, dtype="<f4")
    request = v2.ModelInferRequest(model_name="tiny-mlp", model_version=version)
    request.inputs.add(name="FEATURES", datatype=datatype, shape=list(values.shape))
    request.raw_input_contents.append(values.tobytes())
    return request


def by_version(reply: v2.ModelStatisticsResponse) -> dict[tuple[str, str], v2.ModelStatistics]:
    return {(stats.name, stats.version): stats for stats in reply.model_stats}


async def test_statistics_count_each_versions_inferences_as_metrics_do(served: Stubs) -> None:
    stub, v1, app = served
    three_rows = genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name="tiny-mlp"),
        rows=[genre_pb2.FeatureRow(features=example_row(tempo=t)) for t in (90.0, 120.0, 150.0)],
    )
    await v1.ClassifyFeatures(three_rows)  # genre.v1, the default version (2)
    await stub.ModelInfer(infer_request(2, version="1"))  # v2, version 1
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ModelInfer(infer_request(2, datatype="INT64"))  # refused, counted as failed
    audio = pcm_s16le(synth_clip("disco", 1.0, TINY_FRONTEND.sample_rate, seed=1))
    chunk = genre_pb2.ClassifyAudioStreamRequest(audio=genre_pb2.AudioChunk(data=audio))
    answers = [
        answer async for answer in v1.ClassifyAudioStream(iter([tiny_stream_config(), chunk]))
    ]

    stats = by_version(await stub.ModelStatistics(v2.ModelStatisticsRequest()))
    assert list(stats) == [("tiny-audio", "1"), ("tiny-mlp", "1"), ("tiny-mlp", "2")]
    default = stats["tiny-mlp", "2"]
    assert (default.inference_count, default.execution_count) == (3, 1)
    assert (default.inference_stats.success.count, default.inference_stats.fail.count) == (1, 1)
    assert default.inference_stats.queue.count == 1
    assert default.inference_stats.compute_infer.count == 1
    assert default.inference_stats.compute_infer.ns > 0
    older = stats["tiny-mlp", "1"]
    assert (older.inference_count, older.inference_stats.success.count) == (2, 1)
    windows = stats["tiny-audio", "1"]
    assert windows.inference_count == sum(1 for a in answers if not a.final) >= 1
    assert windows.inference_stats.success.count == 1  # one stream, one request

    text = scrape(app.metrics_port)
    for (name, version), found in stats.items():
        labels = {"model": name, "version": version}
        assert found.inference_count == sample_value(text, "genre_inferred_rows_total", labels)
        assert found.execution_count == sample_value(text, "genre_batch_executions_total", labels)
        for field, metric in (
            ("queue", "genre_queue_duration_seconds"),
            ("compute_infer", "genre_compute_duration_seconds"),
        ):
            duration = getattr(found.inference_stats, field)
            assert duration.count == sample_value(text, f"{metric}_count", labels)
            seconds = sample_value(text, f"{metric}_sum", labels)
            assert duration.ns == pytest.approx(seconds * NANOSECONDS, abs=1)
        ok = sample_value(text, "genre_requests_total", {**labels, "status": "OK"})
        assert found.inference_stats.success.count == ok


async def test_a_name_asks_for_its_versions_and_a_version_for_one(served: Stubs) -> None:
    stub, _, _ = served
    named = await stub.ModelStatistics(v2.ModelStatisticsRequest(name="tiny-mlp"))
    assert [(s.name, s.version) for s in named.model_stats] == [
        ("tiny-mlp", "1"),
        ("tiny-mlp", "2"),
    ]
    one = await stub.ModelStatistics(v2.ModelStatisticsRequest(name="tiny-mlp", version="1"))
    assert [(s.name, s.version) for s in one.model_stats] == [("tiny-mlp", "1")]


@pytest.mark.parametrize(
    ("name", "version", "code", "message"),
    [
        ("no-such-model", "", grpc.StatusCode.NOT_FOUND, "name: no model 'no-such-model'"),
        ("tiny-mlp", "9", grpc.StatusCode.NOT_FOUND, "version: 'tiny-mlp' has no version '9'"),
        ("", "1", grpc.StatusCode.INVALID_ARGUMENT, "version: given without name"),
    ],
)
async def test_unknown_names_and_versions_get_a_status_naming_the_field(
    served: Stubs, name: str, version: str, code: grpc.StatusCode, message: str
) -> None:
    stub, _, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ModelStatistics(v2.ModelStatisticsRequest(name=name, version=version))
    assert error.value.code() == code
    assert message in str(error.value.details())


async def test_every_worker_answers_with_every_workers_counts(tmp_path: Path) -> None:
    """Calls spread over two worker processes; whichever worker is asked counts them all."""
    repository = tmp_path / "models"
    write_tiny_model(repository)
    calls = 3
    with workers(repository) as server:
        async with connections(server.target) as channels:
            await classify_over_both(server, channels, calls)  # spread over both workers
            answers = [
                by_version(
                    await v2_grpc.GRPCInferenceServiceStub(channel).ModelStatistics(
                        v2.ModelStatisticsRequest(name="tiny-mlp"), timeout=10
                    )
                )["tiny-mlp", "1"]
                for channel in channels
            ]
        text = scrape(server.metrics_port)
    total = calls * len(channels)
    labels = {"model": "tiny-mlp", "version": "1"}
    assert sample_value(text, "genre_inferred_rows_total", labels) == total
    for found in answers:  # from both workers (spread_over_both), each the pod's total
        assert found.inference_count == total
        assert found.inference_stats.success.count == total
        assert found.execution_count == sample_value(text, "genre_batch_executions_total", labels)
        assert found.inference_stats.queue.count == total
