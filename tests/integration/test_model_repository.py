"""Loading the model repository: corrupt versions refused, the rest served, reload, pins."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from genre.v1 import genre_pb2, genre_pb2_grpc
from server.app import create_server
from tests.support.checkpoints import example_row, write_tiny_model
from tests.support.harness import loopback_config, sample_value, scrape


def flip_a_weight_byte(version: Path) -> None:
    weights = version / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))


def truncate_weights(version: Path) -> None:
    weights = version / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


def break_manifest(version: Path) -> None:
    (version / "manifest.json").write_text('{"name": "broken", ')


def remove_weights(version: Path) -> None:
    (version / "model.safetensors").unlink()


def mismatch_labels(version: Path) -> None:
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["labels"] = ["only", "two"]
    (version / "manifest.json").write_text(json.dumps(manifest))


def escape_the_repository(version: Path) -> None:
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["weights"]["file"] = "../../../etc/passwd.safetensors"
    (version / "manifest.json").write_text(json.dumps(manifest))


def classify(name: str, version: str = "") -> genre_pb2.ClassifyFeaturesRequest:
    return genre_pb2.ClassifyFeaturesRequest(
        model=genre_pb2.ModelRef(name=name, version=version),
        rows=[genre_pb2.FeatureRow(features=example_row())],
    )


@pytest.mark.parametrize(
    "corrupt",
    [
        flip_a_weight_byte,
        truncate_weights,
        break_manifest,
        remove_weights,
        mismatch_labels,
        escape_the_repository,
    ],
)
async def test_a_corrupt_version_is_refused_while_the_rest_serve(
    tmp_path: Path, corrupt: Callable[[Path], None], capfd: pytest.CaptureFixture[str]
) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, "tiny-mlp", seed=1)
    corrupt(write_tiny_model(repository, "tiny-mlp", seed=2))
    write_tiny_model(repository, "other-mlp", seed=3)
    app = await create_server(loopback_config(repository))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            reply = await stub.ClassifyFeatures(classify("tiny-mlp"))
            assert reply.model.version == "1"  # the corrupt version 2 is not the default
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ClassifyFeatures(classify("tiny-mlp", "2"))
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            assert (await stub.ClassifyFeatures(classify("other-mlp"))).model.version == "1"
        text = scrape(app.metrics_port)
        assert sample_value(text, "genre_model_load_failures_total", {"model": "tiny-mlp"}) == 1
    finally:
        await app.drain(grace=0.5)
    refusals = [
        json.loads(line)
        for line in capfd.readouterr().err.splitlines()
        if '"model_refused"' in line
    ]
    assert len(refusals) == 1
    assert (refusals[0]["model"], refusals[0]["version"]) == ("tiny-mlp", 2)
    assert refusals[0]["reason"]


async def test_a_pinned_version_is_the_default(repository: Path) -> None:
    app = await create_server(loopback_config(repository, pinned_versions=("tiny-mlp=1",)))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            assert (await stub.ClassifyFeatures(classify("tiny-mlp"))).model.version == "1"
    finally:
        await app.drain(grace=0.5)


async def test_only_configured_models_are_loaded(repository: Path) -> None:
    app = await create_server(loopback_config(repository, models=("other-mlp",)))
    try:
        assert set(app.registry.table.versions) == {"other-mlp"}
    finally:
        await app.drain(grace=0.5)


async def test_reload_serves_a_new_version_and_retires_a_removed_one(repository: Path) -> None:
    app = await create_server(loopback_config(repository))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = genre_pb2_grpc.GenreClassifierStub(channel)
            assert (await stub.ClassifyFeatures(classify("tiny-mlp"))).model.version == "2"
            write_tiny_model(repository, "tiny-mlp", seed=4)
            shutil.rmtree(repository / "other-mlp" / "1")
            await app.reload()
            assert (await stub.ClassifyFeatures(classify("tiny-mlp"))).model.version == "3"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ClassifyFeatures(classify("other-mlp"))
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await app.drain(grace=0.5)
