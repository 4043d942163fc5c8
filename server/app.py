"""Builds, starts and drains the server: gRPC, health, reflection, /metrics and model loading.

``create_server(config)`` returns a started ``App`` whose ports are the bound ones (tests bind 0).
The gRPC port opens before models load. Health (``grpc.health.v1``) then says:

- ``""`` and ``genre.v1.GenreClassifier`` (readiness): SERVING only when every model the server
  is configured to serve (``GENRE_MODELS``, or every model in the repository) has its default
  version loaded and warm, as Triton's strict readiness does; NOT_SERVING while models load,
  while any configured model has no loadable default (every version refused, none present, or
  its pinned version missing: a ``not_serving`` log line names each and why), and while draining.
  All, not one: a pod that serves two of three models takes traffic for the third and fails it
  with NOT_FOUND, and a rollout would go on replacing good pods with such ones. A refused newer
  version does not count while an older one is loaded: the older one is then the default.
- ``genre.v1.GenreClassifier/<model>``: the same rule for one model.
- ``liveness``: SERVING as soon as the port answers, whatever the models do, until the drain
  starts. A liveness probe that followed the models would restart a pod for a bad model file,
  which a restart cannot fix; the event loop answering is what liveness needs.

``App.drain()`` is the SIGTERM path: NOT_SERVING, refuse new calls, let in-flight ones finish
within the grace period, then stop the batchers.

As one of several worker processes (``role``), readiness is the pod's, not the process's: SERVING
only while every worker is ready (``server.pod.readiness``), so a check that lands on any worker
tells
the truth. A worker shares the gRPC port with the others (SO_REUSEPORT) and leaves /metrics to the
supervisor, which aggregates every worker's files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import torch
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from genre.inference import grpc_service_pb2
from genre.v1 import genre_pb2
from server.auth import BearerTokenInterceptor, load_grants
from server.calls import ServingState
from server.config import ServerConfig
from server.handlers import add_servicer
from server.inference.catalog import RemoteRegistry
from server.logs import get_logger
from server.metrics import ServerMetrics
from server.oip.servicer import InferenceServicer
from server.pod.cpus import available_cpus, default_torch_threads
from server.pod.heap import settle_heap
from server.pod.readiness import WorkerRole, WorkerState
from server.registry import ModelRegistry, ModelTable, Registry
from server.runner import select_device
from server.servicer import GenreClassifierServicer
from server.streaming.lateness import Lateness
from server.streaming.session import StreamLimits
from server.tracing import start_tracing
from server.transport import grpc_options, server_credentials
from server.web.site import WebBackend, WebServer, start_web

log = get_logger("server.app")
SERVICE_NAME = genre_pb2.DESCRIPTOR.services_by_name["GenreClassifier"].full_name
INFERENCE_SERVICE = grpc_service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
LIVENESS_SERVICE = "liveness"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DRAIN_SETTLE_SECONDS = 0.25  # quiet time before the gRPC core stops (see ServingState)
PEER_WATCH_SECONDS = 0.25  # how often a worker looks at the other workers' readiness


def model_health_name(model: str) -> str:
    """Per-model health service name, e.g. ``genre.v1.GenreClassifier/gtzan-features-mlp``."""
    return f"{SERVICE_NAME}/{model}"


@dataclass
class App:
    config: ServerConfig
    server: grpc.aio.Server
    grpc_port: int
    metrics_port: int
    registry: Registry
    metrics: ServerMetrics
    health: HealthServicer
    state: ServingState
    _metrics_http: Any
    role: WorkerRole | None = None
    lateness: Lateness | None = None  # fed the loop's lag by a background task, for admission
    web: WebServer | None = None  # the page and its WebSocket bridge (GENRE_HTTP_PORT)
    _background: list[asyncio.Task[None]] = field(default_factory=list)
    _served_names: set[str] = field(default_factory=set)
    _published: tuple[bool, Mapping[str, str]] | None = None  # the readiness last logged
    _locally_ready: bool = False
    _overall: int | None = None  # the health status last set for "" and the service

    async def reload(self) -> ModelTable:
        """Rescans the model repository (SIGHUP and the poll interval call this; a front-end
        asks the inference process to, and gets its next table)."""
        table = await self.registry.reload()
        await self.publish_health(table)
        return table

    async def publish_health(self, table: ModelTable) -> None:
        if self.state.draining:
            return
        names = set(table.versions) | set(table.missing)
        for name in names:
            ready = name in table.versions and name not in table.missing
            await self.health.set(model_health_name(name), SERVING if ready else NOT_SERVING)
        for name in self._served_names - names:
            await self.health.set(model_health_name(name), NOT_SERVING)
        self._served_names = names
        self._locally_ready = table.ready
        await self._publish_overall()
        self._log_readiness(table)

    async def _publish_overall(self) -> None:
        if self.state.draining:
            return
        role = self.role
        ready = self._locally_ready and (role is None or role.board.others_ready(role.index))
        overall = SERVING if ready else NOT_SERVING
        self.state.ready = ready
        if overall != self._overall:
            self._overall = overall
            await self.health.set("", overall)
            await self.health.set(SERVICE_NAME, overall)
        if role is not None:  # after the health change, so SERVING on the board is true
            state = (
                WorkerState.SERVING
                if ready
                else WorkerState.READY
                if self._locally_ready
                else WorkerState.LOADED
            )
            role.board.publish(role.index, state)

    def _log_readiness(self, table: ModelTable) -> None:
        """One line when readiness or its reasons change, not one per reload poll."""
        readiness = (table.ready, dict(table.missing))
        if readiness == self._published:
            return
        self._published = readiness
        if table.ready:
            log.info("serving", models=sorted(table.versions))
        elif table.missing:
            log.warning("not_serving", waiting_for=dict(table.missing))
        else:
            log.warning("not_serving", reason=f"no model in {self.config.model_repository}")

    def start_background(self) -> None:
        """The tasks that live as long as the server: loop-lag sampling, the reload poll and,
        for a worker, the watch on the other workers; the drain cancels them."""
        if self.lateness is not None:
            sampler = self.lateness.sample_loop_lag(self.metrics.event_loop_lag)
            self._background.append(asyncio.create_task(sampler, name="loop-lag"))
        interval = self.config.reload_interval_seconds
        if interval > 0 and isinstance(self.registry, ModelRegistry):  # else the inference
            # process polls, for every front-end at once
            self._background.append(asyncio.create_task(self._poll(interval), name="reload-poll"))
        if self.role is not None:
            watch = self._watch_peers(self.role)
            self._background.append(asyncio.create_task(watch, name="peer-watch"))

    async def _watch_peers(self, role: WorkerRole) -> None:
        """Follows the other workers' readiness; samples the task gauge; notices a lost parent.

        The task gauge is sampled here because a gauge's ``set_function`` is invisible in
        prometheus_client's multiprocess mode. A worker whose supervisor died (SIGKILL) would
        otherwise keep the port forever as an orphan, so it signals itself to drain and exit.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(PEER_WATCH_SECONDS)
            await self._publish_overall()
            self.metrics.event_loop_tasks.set(len(asyncio.all_tasks(loop)))
            if os.getppid() != role.parent_pid:
                log.warning("supervisor_lost", parent_pid=role.parent_pid)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    async def _poll(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload()
            except Exception:  # a failed scan must not end polling
                log.exception("reload_failed")

    async def drain(self, grace: float | None = None) -> None:
        """Refuses new calls, gives in-flight ones ``grace`` seconds, then shuts down.

        New calls are refused by the servicer with UNAVAILABLE (a status clients retry on another
        replica) while the port stays open; the gRPC server itself stops only once in-flight
        calls are done, because calls that race a core shutdown end CANCELLED instead.
        """
        grace = self.config.drain_grace_seconds if grace is None else grace
        if self.state.draining:
            return
        self.state.drain.fire()
        self.state.ready = False
        if self.role is not None:
            self.role.board.publish(self.role.index, WorkerState.STARTING)
        started = asyncio.get_running_loop().time()
        log.info("draining", grace_seconds=grace, active_calls=self.state.active_calls)
        await self.health.enter_graceful_shutdown()
        for task in self._background:
            task.cancel()
        finished = await self.state.wait_quiet(grace, settle=DRAIN_SETTLE_SECONDS)
        if not finished:
            log.warning("drain_grace_expired", active_calls=self.state.active_calls)
        remaining = max(0.0, grace - (asyncio.get_running_loop().time() - started))
        await self.server.stop(remaining)
        if self.web is not None:
            await self.web.stop()
        await self.registry.close()
        if self.state.tracing is not None:
            await self.state.tracing.close()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()
        log.info("stopped")


def configure_torch(threads: int, workers: int = 1) -> int:
    """Inference threads, set deliberately: one core stays with each event loop and gRPC.

    On 2 cores, two intra-op threads made 256-row calls no faster on the CPU and slower on a
    GPU, for 12-18% more server CPU per call (``bench/results/torch_threads_h200.md``).
    """
    chosen = threads if threads > 0 else default_torch_threads(available_cpus(), workers)
    torch.set_num_threads(chosen)
    with contextlib.suppress(RuntimeError):  # only settable before any inter-op work started
        torch.set_num_interop_threads(1)
    return chosen


def build_registry(
    config: ServerConfig, role: WorkerRole | None, metrics: ServerMetrics
) -> tuple[Registry, str, int]:
    """The models this process serves, the device they run on and the torch threads it uses:
    its own copy, or, for a front-end, the inference process's table (no weights, no device:
    one thread, only for resampling streams)."""
    if role is not None and role.inference_socket:
        remote = RemoteRegistry(
            role.inference_socket, role.index, config.inference_arena_mib * 1024 * 1024
        )
        return remote, "inference process", configure_torch(1)
    threads = configure_torch(config.torch_threads, config.workers if role else 1)
    device = select_device(config.device)
    return ModelRegistry.from_config(config, device, metrics), str(device), threads


async def create_server(config: ServerConfig, role: WorkerRole | None = None) -> App:
    """``role``: this process is one of the supervisor's workers (see the module docstring)."""
    metrics = ServerMetrics.create()
    loop = asyncio.get_running_loop()
    if role is None:
        metrics.event_loop_tasks.set_function(lambda: len(asyncio.all_tasks(loop)))
    registry, device, threads = build_registry(config, role, metrics)
    process, worker = ("server", None) if role is None else ("worker", role.index)
    state = ServingState(tracing=start_tracing(config.otlp_endpoint, process, worker))
    auth = None
    if config.auth_tokens_file:
        grants = load_grants(Path(config.auth_tokens_file))
        auth = BearerTokenInterceptor(grants, config.auth_exempt_services, metrics)
    server = grpc.aio.server(
        options=grpc_options(config, share_port=role is not None),
        interceptors=[auth] if auth is not None else [],
    )
    lateness = Lateness()
    servicer = GenreClassifierServicer(
        registry,
        metrics,
        state,
        config.max_rows_per_request,
        StreamLimits.from_config(config),
        lateness,
        shares=role.shares if role is not None else None,
        pooled_load=isinstance(registry, RemoteRegistry),
    )
    add_servicer(servicer, server)
    add_servicer(
        InferenceServicer(registry, metrics, state, config.max_rows_per_request, servicer.streams),
        server,
        INFERENCE_SERVICE,
        grpc_service_pb2,
    )
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, INFERENCE_SERVICE.full_name, health.SERVICE_NAME, reflection.SERVICE_NAME),
        server,
    )
    address = f"{config.grpc_host}:{config.grpc_port}"
    credentials = server_credentials(config)
    grpc_port = (
        server.add_secure_port(address, credentials)
        if credentials is not None
        else server.add_insecure_port(address)
    )
    if grpc_port == 0:
        raise RuntimeError(f"could not bind gRPC to {config.grpc_host}:{config.grpc_port}")
    metrics_http = None
    if role is None:
        metrics_http, _ = start_http_server(
            config.metrics_port, addr=config.metrics_host, registry=metrics.registry
        )
    await health_servicer.set("", NOT_SERVING)
    await health_servicer.set(SERVICE_NAME, NOT_SERVING)
    await health_servicer.set(LIVENESS_SERVICE, SERVING)
    await server.start()
    web = None
    if config.http_port:
        try:
            web = await start_web(WebBackend(config, servicer, registry, auth), role is not None)
        except BaseException:  # e.g. the port is taken: leave nothing running behind
            await server.stop(None)
            raise
    app = App(
        config=config,
        server=server,
        grpc_port=grpc_port,
        metrics_port=int(metrics_http.server_port) if metrics_http is not None else 0,
        registry=registry,
        metrics=metrics,
        health=health_servicer,
        state=state,
        _metrics_http=metrics_http,
        role=role,
        lateness=lateness,
        web=web,
    )
    log.info(
        "starting",
        grpc_port=grpc_port,
        metrics_port=app.metrics_port,
        http_port=web.port if web is not None else 0,
        device=device,
        torch_threads=threads,
        repository=str(config.model_repository),
    )
    if isinstance(registry, RemoteRegistry):
        registry.on_change = app.publish_health
        registry.start()
        table = await registry.first_table()
        await app.publish_health(table)
    else:
        table = await app.reload()
    app.start_background()
    log.info(  # the first load pass is over; `serving` says whether readiness followed
        "ready",
        models=[f"{s.name}/{s.version}" for s in table.all()],
        serving=table.ready,
    )
    return app


async def serve(config: ServerConfig, role: WorkerRole | None = None) -> None:
    """Runs a server until SIGTERM or SIGINT, then drains it; SIGHUP rescans the repository."""
    app = await create_server(config, role)
    settle_heap()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reloads: set[asyncio.Task[object]] = set()

    def reload_on_signal() -> None:
        task: asyncio.Task[object] = loop.create_task(app.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload_on_signal)
    await stop.wait()
    log.info("signal_received")
    await app.drain()
