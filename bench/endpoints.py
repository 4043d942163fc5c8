"""The servers a run measures, each started with a given number of serving processes.

A worker count means the same for every kind, so ratios between kinds compare like with like:
ours runs ``GENRE_WORKERS=N`` (a supervisor and N workers sharing one port), the echo ceiling
runs N echo processes sharing one port the same way (SO_REUSEPORT: the kernel gives each new
connection to one of them), and TorchServe runs N workers per model behind its one front-end.
The peers of ``bench.peers`` follow TorchServe: Triton runs N model instances (``instance_group``
count N, each a Python backend stub process) behind its one ``tritonserver``, MLServer N parallel
workers behind its one front-end process.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from bench.server_process import ServerProcess, start_server_process

CLASSIFY = "/genre.v1.GenreClassifier/ClassifyFeatures"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"  # ours over the Open Inference Protocol


@dataclass(frozen=True)
class Endpoint:
    """Where the load client sends calls, and which processes' CPU the cell charges.

    ``pids`` are the roots of the serving process trees (one supervisor, or N echo servers).
    ``split``: whether the CPU share of each serving process means anything (not TorchServe,
    whose front-end and model workers do different jobs).
    """

    target: str
    metrics_port: int
    method: str
    bodies: dict[str, Path]
    pids: tuple[int, ...]
    workers: int
    split: bool = True


@contextlib.contextmanager
def reserved_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A free port held by a bound (not listening) SO_REUSEPORT socket while the block runs.

    N processes started inside bind the port one after another; without the hold, another
    program could take it between the first and the last. The held socket never listens, so it
    takes no connections from the kernel's balancing.
    """
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, 0))
        yield int(holder.getsockname()[1])
    finally:
        holder.close()


@contextlib.contextmanager
def echo_servers(manifest: Path, workers: int) -> Iterator[list[ServerProcess]]:
    """``workers`` echo processes on one port; one process binds a port of its own, as ours."""
    command = [sys.executable, "-m", "bench.peers.echo", "--manifest", str(manifest)]
    started: list[ServerProcess] = []
    try:
        if workers == 1:
            started.append(start_server_process(None, command=command))
        else:
            with reserved_port() as port:
                for _ in range(workers):
                    started.append(
                        start_server_process(
                            None,
                            {"GENRE_GRPC_PORT": str(port)},
                            command=[*command, "--reuseport"],
                        )
                    )
        yield started
    finally:
        for handle in started:
            handle.stop()


@contextlib.contextmanager
def ours(
    repository: Path,
    env: dict[str, str],
    bodies: dict[str, Path],
    workers: int,
    method: str = CLASSIFY,
) -> Iterator[Endpoint]:
    handle = start_server_process(repository, {**env, "GENRE_WORKERS": str(workers)})
    try:
        pids = (handle.process.pid,)
        yield Endpoint(handle.target, handle.metrics_port, method, bodies, pids, workers)
    finally:
        handle.stop()


@contextlib.contextmanager
def echo(manifest: Path, bodies: dict[str, Path], workers: int) -> Iterator[Endpoint]:
    with echo_servers(manifest, workers) as handles:
        pids = tuple(h.process.pid for h in handles)
        yield Endpoint(handles[0].target, 0, CLASSIFY, bodies, pids, workers)


class TorchServe:
    """TorchServe's venv, stubs, request bodies and model archive, made once per run; a server
    started from them per worker count. A failed setup is remembered, not tried again."""

    def __init__(
        self,
        workdir: Path,
        version: Path,
        model: str,
        raw_bodies: dict[str, Path],
        batch_size: int,
        max_batch_delay_ms: float,
        setup_s: float,
    ) -> None:
        self._workdir = workdir / "torchserve"
        self._version, self._model = version, model
        self._raw_bodies = raw_bodies
        self._batch = (batch_size, max_batch_delay_ms)
        self._setup_s = setup_s
        self._prepared: tuple[Path, Path, dict[str, Path]] | None = None
        self._failed: Exception | None = None

    def _prepare(self) -> tuple[Path, Path, dict[str, Path]]:
        from bench.peers import torchserve

        if self._failed is not None:
            raise self._failed
        if self._prepared is not None:
            return self._prepared
        try:
            self._workdir.mkdir(exist_ok=True)
            venv = torchserve.ensure_venv(self._setup_s)
            inference_pb2, _ = torchserve.inference_stubs(self._workdir, venv)
            bodies = {}
            for scenario, raw in (("features-1", "raw-1"), ("features-256", "raw-256")):
                bodies[scenario] = self._workdir / f"{scenario}.bin"
                request = _predictions_request(inference_pb2, self._model, self._raw_bodies[raw])
                bodies[scenario].write_bytes(request)
            store = torchserve.build_archive(self._workdir, venv, self._version, self._model)
        except Exception as error:
            self._failed = error
            raise
        self._prepared = (venv, store, bodies)
        return self._prepared

    @contextlib.contextmanager
    def serving(self, workers: int) -> Iterator[Endpoint]:
        from bench.peers import torchserve

        venv, store, bodies = self._prepare()
        process = torchserve.start_torchserve(
            self._workdir,
            venv,
            store,
            self._model,
            batch_size=self._batch[0],
            max_batch_delay_ms=self._batch[1],
            probe=bodies["features-1"].read_bytes(),
            workers=workers,
        )
        try:
            pids = (process.process.pid,)
            yield Endpoint(process.target, 0, torchserve.METHOD, bodies, pids, workers, False)
        finally:
            process.stop()


def _predictions_request(inference_pb2: ModuleType, model: str, raw: Path) -> bytes:
    request = inference_pb2.PredictionsRequest(model_name=model, input={"data": raw.read_bytes()})
    return bytes(request.SerializeToString())
