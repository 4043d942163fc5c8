"""Worker processes on one port (``GENRE_WORKERS``): supervision, one /metrics, drain, reload.

Each test runs a real supervisor with real worker processes (``python -m server``) and talks to
them over loopback with one TCP connection per channel, so the kernel spreads the connections;
``bench.sockets`` reads from /proc which worker holds which of them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from genre.v1 import genre_pb2, genre_pb2_grpc
from server.pod.cpus import available_cpus, default_workers
from tests.support.checkpoints import write_tiny_audio_model, write_tiny_model
from tests.support.harness import sample_value, scrape
from tests.support.workers import (
    CONNECTIONS,
    NOT_SERVING,
    SERVING,
    classify_over_both,
    connections,
    features_request,
    health_until,
    open_stream,
    spread_over_both,
    workers,
)


def test_the_default_starts_a_worker_per_cpu(tmp_path: Path) -> None:
    """What ``make serve`` does on a machine with several CPUs (GENRE_WORKERS unset)."""
    cpus = available_cpus()
    if cpus < 2:
        pytest.skip("one CPU: the default is a single process")
    repository = tmp_path / "models"
    write_tiny_model(repository)
    with workers(repository, count="") as server:
        starting = next(r for r in server.records() if r.get("event") == "starting")
        assert starting["workers"] == default_workers(cpus) >= 2
        assert len(server.worker_pids()) == default_workers(cpus)


async def test_one_metrics_endpoint_counts_every_call_of_every_worker(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository)
    calls = 5
    with workers(repository) as server:
        async with connections(server.target) as channels:
            await classify_over_both(server, channels, calls)
        text = scrape(server.metrics_port)
        ok = {"method": "ClassifyFeatures", "status": "OK"}
        assert sample_value(text, "genre_requests_total", ok) == calls * CONNECTIONS
        assert sample_value(text, "genre_workers") == 2
        assert sample_value(text, "genre_workers_ready") == 2
        assert sample_value(text, "genre_in_flight_requests") == 0
        assert sample_value(text, "genre_model_info", {"is_default": "true"}) == 1
        await asyncio.sleep(0.2)  # workers write their log lines from a thread every 20 ms
        answered_by = {r["worker"] for r in server.records() if r.get("event") == "request"}
    assert answered_by == {0, 1}


async def test_a_killed_worker_is_logged_and_restarted_while_the_others_keep_serving(
    tmp_path: Path,
) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository)
    write_tiny_audio_model(repository)
    with workers(repository) as server:
        async with connections(server.target) as channels:
            held = await spread_over_both(server, channels)
            streams = [await open_stream(channel) for channel in channels]
            victim = min(held, key=lambda pid: len(held[pid]))
            os.kill(victim, signal.SIGKILL)
            lost = len(held[victim])
            deadline = time.monotonic() + 10  # the client sees the connection close at once
            while sum(stream.call.done() for stream in streams) < lost:
                assert time.monotonic() < deadline, "the killed worker's streams never ended"
                await asyncio.sleep(0.05)
            ended = [await s.call.code() for s in streams if s.call.done()]
            assert ended == [grpc.StatusCode.UNAVAILABLE] * lost, ended
            for stream in streams:  # the other workers' streams go on
                if not stream.call.done():
                    stream.send_clip()
                    assert (await stream.next_answer()).HasField("window")
            for stream in streams:
                stream.call.cancel()
        await health_until(server.target, NOT_SERVING, seconds=5)  # one worker is missing
        exited = server.read_logs_until("worker_exited", timeout=10)
        assert (exited["pid"], exited["signal"]) == (victim, "SIGKILL")
        await health_until(server.target, SERVING, seconds=60)
        assert victim not in server.worker_pids().values()
        assert len(server.worker_pids()) == 2
        async with connections(server.target) as channels:
            for channel in channels:
                stub = genre_pb2_grpc.GenreClassifierStub(channel)
                await stub.ClassifyFeatures(features_request(), timeout=10)
        assert sample_value(scrape(server.metrics_port), "genre_worker_restarts_total") == 1


async def test_sigterm_drains_every_worker_and_the_supervisor_exits_0(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_audio_model(repository)
    with workers(repository) as server:
        async with connections(server.target) as channels:
            await spread_over_both(server, channels)
            pids = set(server.worker_pids().values())
            streams = [await open_stream(channel) for channel in channels]
            server.process.send_signal(signal.SIGTERM)
            server.read_logs_until("draining", timeout=10, from_worker=False)
            for stream in streams:  # in flight on every worker: each ends with its final answer
                replies = await stream.finish()
                assert replies[-1].final, replies
                assert await stream.call.code() == grpc.StatusCode.OK
        assert server.process.wait(timeout=30) == 0
    stopped = [r for r in server.records() if r.get("event") == "stopped" and "worker" in r]
    assert {r["worker"] for r in stopped} == {0, 1}
    for pid in pids:
        with pytest.raises(ProcessLookupError):  # the worker outlived its supervisor
            os.kill(pid, 0)


async def test_sighup_reloads_every_worker(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, version=1, seed=1)
    with workers(repository) as server:
        async with connections(server.target) as channels:
            await spread_over_both(server, channels)
            write_tiny_model(repository, version=2, seed=2)
            server.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while {  # each worker logs the new version when it has loaded it
                r.get("worker")
                for r in server.records()
                if r.get("event") == "model_loaded" and r.get("version") == 2
            } != {0, 1}:
                assert time.monotonic() < deadline, "a worker never loaded version 2"
                await asyncio.sleep(0.05)
            for channel in channels:  # every connection, on either worker, answers with v2
                stub = genre_pb2_grpc.GenreClassifierStub(channel)
                reply = await stub.ClassifyFeatures(features_request(), timeout=10)
                assert reply.model.version == "2"


def test_a_port_held_by_another_program_stops_the_supervisor_with_a_reason(
    tmp_path: Path,
) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository)
    with socket.socket() as taken:  # no SO_REUSEPORT: nobody may share it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "server"],
            env={
                **os.environ,
                "GENRE_WORKERS": "2",
                "GENRE_GRPC_HOST": "127.0.0.1",
                "GENRE_GRPC_PORT": str(port),
                "GENRE_METRICS_PORT": "0",
                "GENRE_MODEL_REPOSITORY": str(repository),
                "GENRE_LOG_FORMAT": "json",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert '"event": "port_unavailable"' in done.stderr
    assert "worker_started" not in done.stderr


async def nothing_to_send() -> AsyncIterator[genre_pb2.ClassifyAudioStreamRequest]:
    await asyncio.sleep(3600)
    yield genre_pb2.ClassifyAudioStreamRequest()


async def test_the_stream_limit_is_the_pods_wherever_the_connections_landed(
    tmp_path: Path,
) -> None:
    """Two workers with two slots each: four streams on one connection (so on one worker) are
    all admitted, because the other worker's slots are free; the fifth finds the pod full."""
    repository = tmp_path / "models"
    write_tiny_audio_model(repository)
    with workers(repository, GENRE_MAX_STREAMS="2") as server:
        async with connections(server.target, 1) as (channel,):
            streams = [await open_stream(channel) for _ in range(4)]
            # the fifth sends nothing: a refusal that races the client's first message makes
            # grpc report the failed send (INTERNAL) instead of the server's status
            silent = genre_pb2_grpc.GenreClassifierStub(channel).ClassifyAudioStream(
                nothing_to_send()
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await silent.read()
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "4 streams are open on this pod's 2 workers (limit 4)" in str(
                refused.value.details()
            )
            for stream in streams:
                stream.call.cancel()
            await asyncio.sleep(0.3)
            again = await open_stream(channel)  # the slots came back
            again.call.cancel()
        assert sample_value(scrape(server.metrics_port), "genre_open_streams") == 0
