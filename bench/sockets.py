"""Which process holds which TCP connection, read from /proc (Linux): for the worker tests and
the connection-spread probe.

Worker processes share one port and the kernel decides which one accepts a connection; a test
that kills a worker or counts per-worker calls must know where its connections landed. No grpc
API says; the sockets a process has open (``/proc/<pid>/fd``) and the kernel's TCP table
(``/proc/net/tcp``, ``tcp6``) do.
"""

from __future__ import annotations

import os
from pathlib import Path

ESTABLISHED = "01"


def socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def accepted_peer_ports(pid: int, local_port: int) -> set[int]:
    """Remote ports of the established connections ``pid`` accepted on ``local_port``."""
    inodes = socket_inodes(pid)
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
            if (
                state == ESTABLISHED
                and inode in inodes
                and int(local.split(":")[1], 16) == local_port
            ):
                ports.add(int(remote.split(":")[1], 16))
    return ports
