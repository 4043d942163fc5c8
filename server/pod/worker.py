"""The body of one worker process: a complete server on the shared port, told who it is.

This module is what the supervisor names as the spawn target, so it must stay cheap to import:
the supervisor imports it to pickle ``run_worker`` by name, and the supervisor itself never loads
torch or gRPC (workers start by ``spawn`` into fresh interpreters, before any CUDA or gRPC state
exists anywhere). ``server.app`` is imported inside ``run_worker`` for that reason.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import MutableSequence

from server.config import ServerConfig
from server.logs import configure_logging
from server.pod.readiness import ReadinessBoard, WorkerRole
from server.pod.shares import PodShares


def run_worker(
    config: ServerConfig,
    index: int,
    slots: MutableSequence[int],
    parent_pid: int,
    inference_socket: str = "",
    stream_counts: MutableSequence[int] | None = None,
    stream_load: MutableSequence[float] | None = None,
) -> None:
    # A SIGHUP that arrives while the worker still imports torch would end it (the default
    # action); ignoring it loses nothing, as the first load pass scans the repository anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    configure_logging(
        config.log_format,
        config.log_level,
        background=True,
        fields={"worker": index},
        access_sample=config.access_log_sample,
    )
    from server.app import serve  # here, not at the top: see the module docstring

    role = WorkerRole(
        index=index,
        board=ReadinessBoard(slots),
        parent_pid=parent_pid,
        inference_socket=inference_socket,
        shares=(
            PodShares(index, stream_counts, stream_load)
            if stream_counts is not None and stream_load is not None
            else None
        ),
    )
    asyncio.run(serve(config, role))
