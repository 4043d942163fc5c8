"""The parent of the worker processes: starts them, restarts the dead, drains them all.

Design, chosen by measurement (docs/operations.md, "Worker processes"): N complete servers on
one port, each with its own batchers, the kernel spreading connections over them (SO_REUSEPORT). The
supervisor serves no RPC and loads no model; it imports neither torch nor gRPC, and starts each
worker with ``spawn`` so no CUDA or gRPC state is ever inherited across a fork.

- The port (and the web page's, when on) is reserved here first (a bound, never listening
  socket with SO_REUSEPORT), so port 0 works and a restarted worker finds its port still held.
- A worker that exits is logged (``worker_exited``, with its exit code or signal), its slot on the
  readiness board cleared (every worker's health says NOT_SERVING until it is back), its live
  gauges marked dead, and it is started again after a backoff that doubles from 1 s to 30 s and
  resets once a worker has stayed up for a minute. Its in-flight calls end UNAVAILABLE when the
  kernel closes its connections; the other workers never notice.
- SIGTERM/SIGINT: every worker gets SIGTERM and drains as a single process does; the supervisor
  waits for them (the drain grace plus a margin), then exits 0. SIGHUP goes to every worker.
- One /metrics for all: prometheus_client's multiprocess mode, its directory made fresh at start
  (``PROMETHEUS_MULTIPROC_DIR``, inherited by the workers) and removed at exit.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry, multiprocess, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from server.config import ServerConfig
from server.inference.process import run_inference
from server.logs import get_logger
from server.pod.cpus import gpu_present
from server.pod.readiness import ReadinessBoard, WorkerState
from server.pod.shares import PodShares
from server.pod.worker import run_worker

log = get_logger("server.pod.supervisor")
Process = multiprocessing.process.BaseProcess
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 60.0  # a worker up this long has its backoff reset
EXIT_MARGIN_SECONDS = 10.0  # beyond the drain grace, for a worker's own shutdown
POLL_SECONDS = 0.1


@dataclass
class ChildSlot:
    """One supervised process: a worker (``index`` 0..N-1) or the inference process."""

    index: int
    role: str = "worker"  # or "inference"
    process: multiprocessing.process.BaseProcess | None = None
    started_at: float = 0.0
    backoff: float = FIRST_BACKOFF_SECONDS
    restart_at: float | None = None

    @property
    def event_prefix(self) -> str:
        return self.role


@dataclass
class SupervisorCounts:
    restarts: int = 0
    inference_restarts: int = 0


class SupervisorCollector(Collector):
    """The supervisor's own series, computed at scrape time from its state."""

    def __init__(
        self,
        workers: int,
        board: ReadinessBoard,
        counts: SupervisorCounts,
        inference: ChildSlot | None = None,
    ) -> None:
        self._workers = workers
        self._board = board
        self._counts = counts
        self._inference = inference

    def collect(self) -> Iterator[Any]:
        yield GaugeMetricFamily("genre_workers", "Worker processes configured.", self._workers)
        yield GaugeMetricFamily(
            "genre_workers_ready",
            "Worker processes whose every configured model is loaded and warm.",
            self._board.count_ready(),
        )
        yield CounterMetricFamily(
            "genre_worker_restarts",
            "Worker processes started again after one exited without being asked to.",
            self._counts.restarts,
        )
        if self._inference is not None:
            process = self._inference.process
            yield GaugeMetricFamily(
                "genre_inference_process_up",
                "1 while the inference process (the models, for every worker) is running.",
                int(process is not None and process.is_alive()),
            )
            yield CounterMetricFamily(
                "genre_inference_process_restarts",
                "Inference processes started again after one exited without being asked to.",
                self._counts.inference_restarts,
            )


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, non-listening SO_REUSEPORT socket: holds the port; receives no connection."""
    bare = host.strip("[]")
    family, kind, proto, _, address = socket.getaddrinfo(
        bare or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    holder = socket.socket(family, kind, proto)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(address)
    return holder


def fresh_metrics_directory() -> str:
    """A new, empty directory for the workers' metric files (stale files would add old counts)."""
    return tempfile.mkdtemp(prefix="genre-serve-metrics-")


def uses_inference_process(config: ServerConfig) -> bool:
    """``GENRE_INFERENCE_PROCESS``: on, off, or auto (on where a GPU is present and the
    device setting may use it; docs/benchmarks.md has the measurements)."""
    if config.inference_process != "auto":
        return config.inference_process == "on"
    return config.device != "cpu" and gpu_present()


class Supervisor:
    def __init__(self, config: ServerConfig, workers: int) -> None:
        self._config = config
        self._workers = workers
        self._context = multiprocessing.get_context("spawn")
        self._slots_array = self._context.RawArray("b", workers)
        self._board = ReadinessBoard(self._slots_array)
        self._shares = PodShares(
            -1, self._context.RawArray("i", workers), self._context.RawArray("d", workers)
        )
        self._slots = [ChildSlot(index) for index in range(workers)]
        self._inference = ChildSlot(0, "inference") if uses_inference_process(config) else None
        self._socket_directory = ""
        self._counts = SupervisorCounts()
        self._stop_requested = False
        self._reloads_requested = 0
        self._ready_logged = False

    @property
    def _inference_socket(self) -> str:
        return os.path.join(self._socket_directory, "inference.sock") if self._inference else ""

    def _ports(self) -> list[tuple[str, int]]:
        """The gRPC port, and the web page's when it is on (every worker serves it too)."""
        ports = [(self._config.grpc_host, self._config.grpc_port)]
        if self._config.http_port:
            ports.append((self._config.http_host, self._config.http_port))
        return ports

    def run(self) -> int:
        metrics_directory = fresh_metrics_directory()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_directory  # the workers inherit it
        holders: list[socket.socket] = []
        try:
            for host, wanted in self._ports():
                holders.append(reserve_port(host, wanted))
        except OSError as error:  # the port is held by a process that does not share it
            log.error("port_unavailable", port=wanted, error=str(error))
            for held in holders:
                held.close()
            shutil.rmtree(metrics_directory, ignore_errors=True)
            return 1
        holder = holders[0]
        port = int(holder.getsockname()[1])
        worker_config = self._config.replace(grpc_port=port)
        self._socket_directory = tempfile.mkdtemp(prefix="genre-serve-")
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=metrics_directory)  # type: ignore[no-untyped-call]
        registry.register(
            SupervisorCollector(self._workers, self._board, self._counts, self._inference)
        )
        metrics_http, _ = start_http_server(
            self._config.metrics_port, addr=self._config.metrics_host, registry=registry
        )
        log.info(
            "starting",
            grpc_port=port,
            http_port=self._config.http_port,
            metrics_port=int(metrics_http.server_port),
            workers=self._workers,
            inference_process=self._inference is not None,
            metrics_directory=metrics_directory,
        )
        self._install_signal_handlers()
        try:
            if self._inference is not None:  # first, so the front-ends find it loading
                self._start(self._inference, worker_config)
            for slot in self._slots:
                self._start(slot, worker_config)
            while not self._stop_requested:
                self._wait_for_events()
                self._forward_reloads()
                self._reap(metrics_directory)
                self._restart_due(worker_config)
                self._log_ready_once()
            self._drain_all(metrics_directory)
        finally:
            metrics_http.shutdown()
            metrics_http.server_close()
            for held in holders:
                held.close()
            shutil.rmtree(metrics_directory, ignore_errors=True)
            shutil.rmtree(self._socket_directory, ignore_errors=True)
        log.info("stopped")
        return 0

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, _: FrameType | None) -> None:
            self._stop_requested = True

        def reload(signum: int, _: FrameType | None) -> None:
            self._reloads_requested += 1

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)
        signal.signal(signal.SIGHUP, reload)

    def _children(self) -> list[ChildSlot]:
        return [*self._slots, *([self._inference] if self._inference is not None else [])]

    def _start(self, slot: ChildSlot, config: ServerConfig) -> None:
        if slot.role == "inference":
            target: Any = run_inference
            args: tuple[Any, ...] = (config, self._inference_socket, os.getpid())
            name = "genre-serve-inference"
        else:
            self._board.publish(slot.index, WorkerState.STARTING)
            target = run_worker
            args = (
                config,
                slot.index,
                self._slots_array,
                os.getpid(),
                self._inference_socket,
                self._shares.streams,
                self._shares.load,
            )
            name = f"genre-serve-worker-{slot.index}"
        process = self._context.Process(target=target, args=args, name=name)
        process.start()
        slot.process, slot.started_at, slot.restart_at = process, time.monotonic(), None
        if slot.role == "inference":
            log.info("inference_started", pid=process.pid)
        else:
            log.info("worker_started", worker_index=slot.index, pid=process.pid)

    def _live(
        self, slots: list[ChildSlot] | None = None
    ) -> list[multiprocessing.process.BaseProcess]:
        chosen = self._children() if slots is None else slots
        return [slot.process for slot in chosen if slot.process is not None]

    def _wait_for_events(self) -> None:
        sentinels = [process.sentinel for process in self._live()]
        multiprocessing.connection.wait(sentinels, timeout=POLL_SECONDS)

    def _forward_reloads(self) -> None:
        """SIGHUP reaches whoever loads models: the inference process, or every worker."""
        if not self._reloads_requested:
            return
        self._reloads_requested = 0
        targets = [self._inference] if self._inference is not None else self._slots
        pids = [process.pid for process in self._live(targets) if process.pid is not None]
        log.info("reload_requested", processes=len(pids))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)

    def _reap(self, metrics_directory: str) -> None:
        now = time.monotonic()
        for slot in self._children():
            process = slot.process
            if process is None or process.is_alive():
                continue
            process.join()
            slot.process = None
            if slot.role == "worker":
                self._board.publish(slot.index, WorkerState.STARTING)
                self._shares.clear(slot.index)
            if process.pid is not None:
                multiprocess.mark_process_dead(process.pid, metrics_directory)  # type: ignore[no-untyped-call]
            identity = {"pid": process.pid, **exit_description(process.exitcode)}
            if slot.role == "worker":
                identity["worker_index"] = slot.index
            if self._stop_requested:
                log.info(f"{slot.event_prefix}_stopped", **identity)
                continue
            if now - slot.started_at >= STABLE_SECONDS:
                slot.backoff = FIRST_BACKOFF_SECONDS
            slot.restart_at = now + slot.backoff
            log.error(f"{slot.event_prefix}_exited", **identity, restart_in_seconds=slot.backoff)
            slot.backoff = min(MAX_BACKOFF_SECONDS, slot.backoff * 2)

    def _restart_due(self, config: ServerConfig) -> None:
        now = time.monotonic()
        for slot in self._children():
            if slot.process is None and slot.restart_at is not None and now >= slot.restart_at:
                if slot.role == "inference":
                    self._counts.inference_restarts += 1
                else:
                    self._counts.restarts += 1
                self._start(slot, config)

    def _log_ready_once(self) -> None:
        """'ready' once every worker finished its first load pass, as a single process logs it;
        when all are ready, only once every worker's health has turned SERVING (each follows
        the others every 0.25 s), so a check right after the line finds SERVING anywhere."""
        board = self._board
        if self._ready_logged or not board.all_loaded():
            return
        if board.all_ready() and not board.all_serving():
            return
        self._ready_logged = True
        log.info("ready", workers=self._workers, serving=board.all_serving())

    def _drain_all(self, metrics_directory: str) -> None:
        """Workers first, so the calls they finish still reach the models; then the inference
        process, which then has nothing left in flight."""
        log.info("draining", workers=len(self._live(self._slots)))
        self._stop_and_wait(self._live(self._slots))
        if self._inference is not None:
            self._stop_and_wait(self._live([self._inference]))
        self._reap(metrics_directory)

    def _stop_and_wait(self, processes: list[Process]) -> None:
        for process in processes:
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._config.drain_grace_seconds + EXIT_MARGIN_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker_killed", pid=process.pid, reason="drain did not finish")
                process.kill()
                process.join()


def exit_description(code: int | None) -> dict[str, object]:
    """``exit_code`` for a process that exited, ``signal`` (its name) for one that was killed."""
    if code is not None and code < 0:
        return {"signal": signal.Signals(-code).name}
    return {"exit_code": code}
