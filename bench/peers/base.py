"""What every peer shares: its settings, a setup made once per run, a server per worker count.

A worker count means N model processes behind the peer's one front-end process (Triton: N
model instances, each a Python backend stub process; MLServer: N parallel workers), as
TorchServe's N workers per model. Each model process runs as many torch threads as one of our N
workers would (``server.pod.cpus.default_torch_threads``).
"""

from __future__ import annotations

import abc
import contextlib
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bench.endpoints import MODEL_INFER, Endpoint
from bench.peers.process import PeerProcess, wait_until_serving
from server.pod.cpus import available_cpus, default_torch_threads

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PeerSettings:
    """``bodies``: scenario -> a file holding its v2 ModelInfer request (``bench.run``)."""

    workdir: Path
    version: Path
    model: str
    bodies: dict[str, Path]
    max_batch_size: int
    max_queue_delay_ms: float
    setup_s: float = 600.0
    start_s: float = 180.0

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_queue_delay_ms < 0:
            raise ValueError("max_batch_size must be positive, max_queue_delay_ms not negative")


def model_parameters(settings: PeerSettings, workers: int) -> dict[str, str]:
    """What the peer's model code needs to build the runner (``bench.peers.model``)."""
    return {
        "repository_root": str(REPOSITORY_ROOT),
        "main_site_packages": sysconfig.get_paths()["purelib"],
        "version": str(settings.version),
        "threads": str(default_torch_threads(available_cpus(), workers)),
        "max_batch_size": str(settings.max_batch_size),
    }


class Peer(abc.ABC):
    """A peer's setup, made on first use (a failure is remembered, not tried again), and a
    server started from it per worker count."""

    name: ClassVar[str]

    def __init__(self, settings: PeerSettings) -> None:
        self.settings = settings
        self.workdir = settings.workdir / self.name
        self._prepared = False
        self._failed: Exception | None = None

    @abc.abstractmethod
    def prepare(self) -> None:
        """The venv and whatever the server needs once per run."""

    @abc.abstractmethod
    def start(self, workers: int) -> PeerProcess:
        """The server with ``workers`` model processes, started (not yet known to answer)."""

    def _prepare_once(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._prepared:
            return
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.prepare()
        except Exception as error:
            self._failed = error
            raise
        self._prepared = True

    @contextlib.contextmanager
    def serving(self, workers: int) -> Iterator[Endpoint]:
        self._prepare_once()
        peer = self.start(workers)
        try:
            probe = self.settings.bodies["features-1"].read_bytes()
            wait_until_serving(peer, MODEL_INFER, probe, self.settings.start_s)
            pids = (peer.process.pid,)
            yield Endpoint(peer.target, 0, MODEL_INFER, self.settings.bodies, pids, workers, False)
        finally:
            peer.stop()
