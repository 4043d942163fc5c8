"""The inference process: one per device, the only one that holds weights and runs models.

The supervisor spawns it before the front-ends (``server.pod.supervisor``). It loads and warms the
model repository exactly as a single server does (``server.registry``: verified checkpoints,
per-version batchers with today's max batch, delay, queue bound and deadlines), listens on a Unix
socket for front-ends (``server.inference.service``), and rescans the repository on SIGHUP, on a
front-end's request and on the reload poll, publishing every new table to every front-end.

SIGTERM drains it: the batchers finish what is queued (their answers still go out), then the
connections close. The supervisor sends it only after every front-end has drained, so calls in
flight at a roll-out are answered. A process whose supervisor died exits by itself.

Like a worker, this module stays cheap to import: the supervisor names ``run_inference`` as a
spawn target without loading torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from server.config import ServerConfig
from server.logs import configure_logging

PARENT_WATCH_SECONDS = 0.5


def run_inference(config: ServerConfig, socket_path: str, parent_pid: int) -> None:
    # SIGHUP is ignored until the loop handles it (see server.pod.worker)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    configure_logging(config.log_format, config.log_level, background=True, fields={"inference": 0})
    asyncio.run(serve_inference(config, socket_path, parent_pid))


def listen(path: str) -> socket.socket:
    """The front-ends' socket; a stale one from a process that died is replaced."""
    with contextlib.suppress(FileNotFoundError):
        Path(path).unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    listener.setblocking(False)
    return listener


async def serve_inference(config: ServerConfig, socket_path: str, parent_pid: int) -> None:
    from server.app import configure_torch  # torch and the models load here, not at import
    from server.inference.service import InferenceService
    from server.logs import get_logger
    from server.metrics import ServerMetrics
    from server.pod.cpus import available_cpus, inference_torch_threads
    from server.pod.heap import settle_heap
    from server.registry import ModelRegistry
    from server.runner import select_device
    from server.tracing import start_tracing

    log = get_logger("server.inference")
    threads = config.torch_threads or inference_torch_threads(available_cpus(), config.workers)
    configure_torch(threads)
    device = select_device(config.device)
    metrics = ServerMetrics.create()
    reloading = asyncio.Lock()

    async def reload() -> None:
        async with reloading:
            table = await registry.reload()
            service.publish(table)

    tracing = start_tracing(config.otlp_endpoint, "inference")
    service = InferenceService(reload, tracing)
    registry = ModelRegistry.from_config(config, device, metrics, retire=service.retire)
    listener = listen(socket_path)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, service.request_reload)
    log.info("inference_starting", device=str(device), torch_threads=threads, socket=socket_path)
    tasks = [loop.create_task(service.accept_forever(listener), name="accept")]
    service.publish(registry.table)  # front-ends that connect early learn it is loading
    await reload()
    service.loaded = True
    service.publish(registry.table)
    settle_heap()
    log.info(
        "inference_ready",
        models=[f"{s.name}/{s.version}" for s in registry.table.all()],
        serving=registry.table.ready,
    )
    if config.reload_interval_seconds > 0:
        tasks.append(loop.create_task(poll(reload, config.reload_interval_seconds, log)))
    tasks.append(loop.create_task(watch_parent(parent_pid, stop)))
    await stop.wait()
    log.info("inference_draining")
    for task in tasks:
        task.cancel()
    listener.close()
    await registry.close()  # queued work finishes; its answers go out before the sockets close
    await asyncio.sleep(0)
    await service.close()
    if tracing is not None:
        await tracing.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    log.info("inference_stopped")


async def poll(reload: Callable[[], Awaitable[None]], interval: float, log: Any) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await reload()
        except Exception:  # a failed scan must not end polling
            log.exception("reload_failed")


async def watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """A supervisor killed outright leaves no one to stop this process: it stops itself."""
    while True:
        await asyncio.sleep(PARENT_WATCH_SECONDS)
        if os.getppid() != parent_pid:
            stop.set()
            return
