"""``genre-serve``: flags and GENRE_* variables -> config -> a server that runs until signalled.

SIGTERM and SIGINT drain (NOT_SERVING, in-flight calls finish within the grace period, exit 0);
SIGHUP rescans the model repository, so a new version goes live without a restart.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence

from server.app import create_server
from server.config import ServerConfig
from server.logs import configure_logging, get_logger

log = get_logger("server.main")


async def serve(config: ServerConfig) -> None:
    app = await create_server(config)
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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = ServerConfig.from_sources(sys.argv[1:] if argv is None else argv)
    except ValueError as error:
        print(f"genre-serve: {error}", file=sys.stderr)
        return 2
    configure_logging(config.log_format, config.log_level, background=True)
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
