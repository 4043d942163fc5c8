"""``genre-serve``: flags and GENRE_* variables -> config -> a server that runs until signalled.

SIGTERM and SIGINT drain (NOT_SERVING, in-flight calls finish within the grace period, exit 0);
SIGHUP rescans the model repository, so a new version goes live without a restart.

With more than one worker (``GENRE_WORKERS``; by default one per CPU) this process becomes the
supervisor of that many serving processes (``server.pod.supervisor``); with one it serves itself.
Only the single-process path imports ``server.app``: a supervisor never loads torch or gRPC, and
each spawned worker imports this module again before it runs.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from server.config import ServerConfig
from server.logs import configure_logging
from server.pod.cpus import available_cpus, default_workers


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = ServerConfig.from_sources(sys.argv[1:] if argv is None else argv)
    except ValueError as error:
        print(f"genre-serve: {error}", file=sys.stderr)
        return 2
    workers = config.workers or default_workers(available_cpus())
    configure_logging(
        config.log_format, config.log_level, background=True, access_sample=config.access_log_sample
    )
    if workers > 1:
        from server.pod.supervisor import Supervisor

        return Supervisor(config.replace(workers=workers), workers).run()
    from server.app import serve

    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
