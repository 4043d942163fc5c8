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
from server.readiness import ReadinessBoard, WorkerRole


def run_worker(
    config: ServerConfig, index: int, slots: MutableSequence[int], parent_pid: int
) -> None:
    # A SIGHUP that arrives while the worker still imports torch would end it (the default
    # action); ignoring it loses nothing, as the first load pass scans the repository anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    configure_logging(
        config.log_format, config.log_level, background=True, fields={"worker": index}
    )
    from server.app import serve  # here, not at the top: see the module docstring

    role = WorkerRole(index=index, board=ReadinessBoard(slots), parent_pid=parent_pid)
    asyncio.run(serve(config, role))
