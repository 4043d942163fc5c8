"""Front-end workers feeding one inference process (``GENRE_INFERENCE_PROCESS=on``).

A real supervisor starts the inference process and two front-ends on one port; the tests reach
both front-ends over several connections and check what the issue asks of the design: one set of
weights and batchers for every worker, one /metrics that counts every call, the inference
process's death (calls in flight end UNAVAILABLE within 2 s, health NOT_SERVING, a restart with
backoff, nobody hangs), drain and reload.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import grpc
import pytest

from genre.v1 import genre_pb2, genre_pb2_grpc
from tests.support.checkpoints import write_tiny_audio_model, write_tiny_model
from tests.support.harness import ServerProcess, sample_value, scrape
from tests.support.workers import (
    CONNECTIONS,
    NOT_SERVING,
    SERVING,
    connections,
    features_request,
    health_until,
    open_stream,
    spread_over_both,
    workers,
)

SPLIT = {"GENRE_INFERENCE_PROCESS": "on"}


def inference_pid(server: ServerProcess) -> int:
    """The pid of the inference process's latest start."""
    started = [r for r in server.records() if r.get("event") == "inference_started"]
    assert started, "no inference process was started"
    return int(str(started[-1]["pid"]))


def tiny_models(tmp_path: Path) -> Path:
    repository = tmp_path / "models"
    write_tiny_model(repository)
    write_tiny_audio_model(repository)
    return repository


async def test_every_worker_is_answered_by_the_one_inference_process(tmp_path: Path) -> None:
    with workers(tiny_models(tmp_path), **SPLIT) as server:
        starting = next(r for r in server.records() if r.get("event") == "starting")
        assert starting["inference_process"] is True
        async with connections(server.target) as channels:
            await spread_over_both(server, channels)
            calls = 5
            for channel in channels:
                stub = genre_pb2_grpc.GenreClassifierStub(channel)
                for _ in range(calls):
                    reply = await stub.ClassifyFeatures(features_request(), timeout=10)
                    assert reply.model.version == "1"
                    assert len(reply.results[0].scores) == 3
            listing = await genre_pb2_grpc.GenreClassifierStub(channels[0]).ListModels(
                genre_pb2.ListModelsRequest(), timeout=10
            )
        assert {m.model.name for m in listing.models} == {"tiny-mlp", "tiny-audio"}
        text = scrape(server.metrics_port)
        ok = {"method": "ClassifyFeatures", "status": "OK"}
        assert sample_value(text, "genre_requests_total", ok) == calls * CONNECTIONS
        assert sample_value(text, "genre_inferred_rows_total", {"model": "tiny-mlp"}) == (
            calls * CONNECTIONS
        )
        assert sample_value(text, "genre_inference_process_up") == 1
        assert sample_value(text, "genre_model_info", {"model": "tiny-mlp"}) == 1
        await asyncio.sleep(0.2)  # log lines leave every 20 ms
        records = server.records()
    loaded = [r for r in records if r.get("event") == "model_loaded"]
    assert loaded
    assert all(r.get("inference") == 0 for r in loaded), "a worker loaded weights"
    answered_by = {r["worker"] for r in records if r.get("event") == "request"}
    assert answered_by == {0, 1}


async def test_calls_in_flight_end_unavailable_when_the_inference_process_dies(
    tmp_path: Path,
) -> None:
    """Large calls are computing or queued in the inference process (each takes about a second
    on one CPU thread) when it is killed: they end UNAVAILABLE within 2 s, open streams on both
    workers end UNAVAILABLE at their next window, health turns NOT_SERVING, the process comes
    back with its backoff, and so do health and answers."""
    repository = tiny_models(tmp_path)
    write_tiny_model(repository, "big-mlp", hidden=(2048, 2048, 2048))
    with workers(repository, **SPLIT, GENRE_DEVICE="cpu") as server:
        async with connections(server.target) as channels:
            await spread_over_both(server, channels)
            streams = [await open_stream(channel) for channel in channels]
            big = genre_pb2.ClassifyFeaturesRequest(
                model=genre_pb2.ModelRef(name="big-mlp"),
                rows=[features_request().rows[0]] * 4096,
            )
            in_flight = [
                asyncio.ensure_future(
                    genre_pb2_grpc.GenreClassifierStub(channel).ClassifyFeatures(big, timeout=60)
                )
                for channel in channels[:3]
            ]
            await asyncio.sleep(0.5)
            assert not any(call.done() for call in in_flight), "the calls finished too soon"
            victim = inference_pid(server)
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            for call in in_flight:
                with pytest.raises(grpc.aio.AioRpcError) as failure:
                    await call
                assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() - killed_at < 2.0
            for stream in streams:  # every worker's streams, at their next window
                stream.send_clip()
                with pytest.raises(grpc.aio.AioRpcError) as ended:
                    await asyncio.wait_for(stream.next_answer(), 5)
                assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
            await health_until(server.target, NOT_SERVING, seconds=5)
            exited = server.read_logs_until("inference_exited", timeout=10)
            assert (exited["pid"], exited["signal"]) == (victim, "SIGKILL")
            assert exited["restart_in_seconds"] == 1.0
            await health_until(server.target, SERVING, seconds=60)
            assert inference_pid(server) != victim
            for channel in channels:  # both workers answer again, through the new process
                reply = await genre_pb2_grpc.GenreClassifierStub(channel).ClassifyFeatures(
                    features_request(), timeout=10
                )
                assert reply.model.name == "tiny-mlp"
        text = scrape(server.metrics_port)
        assert sample_value(text, "genre_inference_process_restarts_total") == 1
        assert sample_value(text, "genre_inference_process_up") == 1
        assert sample_value(text, "genre_worker_restarts_total") == 0


async def test_sigterm_drains_the_workers_then_the_inference_process(tmp_path: Path) -> None:
    with workers(tiny_models(tmp_path), **SPLIT) as server:
        async with connections(server.target) as channels:
            await spread_over_both(server, channels)
            streams = [await open_stream(channel) for channel in channels]
            server.process.send_signal(signal.SIGTERM)
            server.read_logs_until("draining", timeout=10, from_worker=False)
            for stream in streams:  # each ends with its final answer, scored by the models
                replies = await stream.finish()
                assert replies[-1].final, replies
                assert await stream.call.code() == grpc.StatusCode.OK
        assert server.process.wait(timeout=30) == 0
    events = [
        (r.get("event"), r.get("worker"), r.get("inference"))
        for r in server.records()
        if r.get("event") in ("stopped", "inference_stopped")
    ]
    workers_stopped = [i for i, (event, worker, _) in enumerate(events) if worker is not None]
    inference_stopped = events.index(("inference_stopped", None, 0))
    assert len(workers_stopped) == 2, events
    assert max(workers_stopped) < inference_stopped, events


async def test_sighup_reaches_the_inference_process_and_every_worker_switches(
    tmp_path: Path,
) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, version=1, seed=1)
    with workers(repository, **SPLIT) as server:
        async with connections(server.target) as channels:
            await spread_over_both(server, channels)
            write_tiny_model(repository, version=2, seed=2)
            server.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while not any(
                r.get("event") == "model_loaded" and r.get("version") == 2 for r in server.records()
            ):
                assert time.monotonic() < deadline, "version 2 was never loaded"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # the table reaches the workers
            for channel in channels:  # every connection, on either worker, answers with v2
                stub = genre_pb2_grpc.GenreClassifierStub(channel)
                reply = await stub.ClassifyFeatures(features_request(), timeout=10)
                assert reply.model.version == "2"
        loaded = [r for r in server.records() if r.get("event") == "model_loaded"]
        assert [r.get("version") for r in loaded] == [1, 2]  # one process loads, once each


async def test_the_reload_poll_runs_in_the_inference_process(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, version=1, seed=1)
    with workers(repository, **SPLIT, GENRE_RELOAD_INTERVAL_SECONDS="0.2") as server:
        write_tiny_model(repository, version=2, seed=2)
        loaded = server.read_logs_until("model_loaded", timeout=20)
        while loaded.get("version") != 2:
            loaded = server.read_logs_until("model_loaded", timeout=20)
        assert loaded["inference"] == 0
        async with connections(server.target, 2) as channels:
            await asyncio.sleep(0.3)
            for channel in channels:
                stub = genre_pb2_grpc.GenreClassifierStub(channel)
                reply = await stub.ClassifyFeatures(features_request(), timeout=10)
                assert reply.model.version == "2"
