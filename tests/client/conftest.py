"""A real gRPC server on 127.0.0.1 port 0 hosting :class:`ScriptedServicer`, wired through
pytest-grpc's fixture names.

pytest-grpc supplies the seams (``grpc_add_to_server``, ``grpc_servicer``, ``grpc_stub_cls``)
and the raw ``grpc_channel``/``grpc_stub``. Its own ``grpc_addr`` and ``grpc_server`` are
overridden: 0.8.0 picks a port by binding ``localhost:0`` and leaking that socket (a
ResourceWarning, an error under ``filterwarnings=error``, and a race for the port), and serves
with a single worker thread. Binding port 0 on the server itself avoids both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import pytest

from client import GenreClient, RetryPolicy
from genre.v1 import genre_pb2_grpc
from tests.client.scripted import ScriptedServicer

FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.001, max_backoff=0.004)


@dataclass(frozen=True)
class Hosted:
    server: grpc.Server
    address: str


@pytest.fixture(scope="module")
def grpc_add_to_server() -> Callable[[ScriptedServicer, grpc.Server], None]:
    return genre_pb2_grpc.add_GenreClassifierServicer_to_server


@pytest.fixture(scope="module")
def grpc_servicer() -> ScriptedServicer:
    return ScriptedServicer()


@pytest.fixture(scope="module")
def grpc_stub_cls() -> type[genre_pb2_grpc.GenreClassifierStub]:
    return genre_pb2_grpc.GenreClassifierStub


@pytest.fixture(scope="module")
def hosted(
    grpc_add_to_server: Callable[[ScriptedServicer, grpc.Server], None],
    grpc_servicer: ScriptedServicer,
) -> Iterator[Hosted]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    grpc_add_to_server(grpc_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield Hosted(server, f"127.0.0.1:{port}")
    finally:
        server.stop(grace=1.0).wait()


@pytest.fixture(scope="module")
def grpc_server(hosted: Hosted) -> grpc.Server:
    return hosted.server


@pytest.fixture(scope="module")
def grpc_addr(hosted: Hosted) -> str:
    return hosted.address


@pytest.fixture
def servicer(grpc_servicer: ScriptedServicer) -> Iterator[ScriptedServicer]:
    """The module's servicer, wiped clean for each test."""
    grpc_servicer.reset()
    yield grpc_servicer
    grpc_servicer.reset()


@pytest.fixture
def client(grpc_addr: str, servicer: ScriptedServicer) -> Iterator[GenreClient]:
    with GenreClient(grpc_addr, retry=FAST_RETRY) as genre:
        yield genre
