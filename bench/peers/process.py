"""Starting a peer as a process group on loopback, knowing when it serves, and stopping it.

Every step is bounded in time and any failure raises ``PeerUnavailable`` with the reason (the
peer's own last log lines where it wrote any), which the harness records as a skipped peer.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc


class PeerUnavailable(RuntimeError):
    """A peer could not be set up or started; the message says why."""


def run_step(command: Sequence[str], timeout: float, **kwargs: object) -> str:
    """A setup command's stdout; PeerUnavailable with its last lines when it fails or overruns."""
    try:
        done = subprocess.run(  # type: ignore[call-overload]
            list(command), capture_output=True, text=True, timeout=timeout, **kwargs
        )
    except subprocess.TimeoutExpired as error:
        raise PeerUnavailable(f"{Path(command[0]).name} took over {timeout:.0f} s") from error
    except OSError as error:
        raise PeerUnavailable(f"{command[0]}: {error}") from error
    if done.returncode != 0:
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
        raise PeerUnavailable(f"{' '.join(command[:4])} failed: {' | '.join(tail)}")
    return str(done.stdout)


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free right now (the peer binds them moments later)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class PeerProcess:
    """A peer started as its own process group (its server, workers and stubs), logging to
    ``log``; stopped by the group's id so nothing it spawned outlives the cell."""

    process: subprocess.Popen[bytes]
    grpc_port: int
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        stop_group(self.process, timeout)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM to the process group ``process`` leads (started with ``start_new_session``), then
    SIGKILL if it has not exited within ``timeout`` seconds."""
    for signum, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def launch(
    command: Sequence[str], grpc_port: int, log: Path, cwd: Path, env: Mapping[str, str]
) -> PeerProcess:
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return PeerProcess(process, grpc_port, log)


def wait_until_serving(
    peer: PeerProcess,
    method: str,
    probe: bytes,
    timeout: float,
    not_ready: Callable[[], str] | None = None,
) -> None:
    """Returns once ``probe`` (a request body for ``method``) is answered and ``not_ready``
    (the peer's own readiness check, if it has one) gives no reason to wait; stops the peer and
    raises PeerUnavailable when it exits or is not ready within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    with grpc.insecure_channel(peer.target) as channel:
        infer = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        while time.monotonic() < deadline:
            if peer.process.poll() is not None:
                last_error = f"exited {peer.process.returncode}: {peer.log_tail()}"
                break
            try:
                infer(probe, timeout=5)
            except grpc.RpcError as error:
                last_error = f"{error.code().name}: {error.details()}"
                time.sleep(0.5)
                continue
            last_error = not_ready() if not_ready is not None else ""
            if not last_error:
                return
            time.sleep(0.5)
    peer.stop()
    raise PeerUnavailable(f"no answer within {timeout:.0f} s ({last_error})")
