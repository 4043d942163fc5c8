"""``connections=N``: both clients spread calls over N real TCP connections, in turn.

The scripted server records each call's ``context.peer()``, the client's end of the connection,
so distinct peers are distinct connections: what a server's worker processes, which the kernel
balances by connection, would each see.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import grpc.aio
import pytest

from client import AsyncGenreClient, GenreClient
from client.channels import LOCAL_SUBCHANNEL_POOL, RoundRobin, connection_options
from client.options import merged_channel_options
from genre.v1 import genre_pb2, genre_pb2_grpc
from tests.client.conftest import FAST_RETRY
from tests.client.scripted import ScriptedServicer

CONNECTIONS = 3
CALLS = 6
ROW = {"tempo": 1.0}


def assert_taken_in_turn(peers: Sequence[str], connections: int) -> None:
    """The first ``connections`` calls each on a connection of its own, then the same cycle."""
    first_round = list(peers[:connections])
    assert len(set(first_round)) == connections, peers
    assert list(peers) == [first_round[n % connections] for n in range(len(peers))]


def test_calls_take_the_connections_in_turn(grpc_addr: str, servicer: ScriptedServicer) -> None:
    with GenreClient(grpc_addr, connections=CONNECTIONS) as genre:
        for _ in range(CALLS):
            genre.list_models()

    assert len(servicer.peers) == CALLS
    assert_taken_in_turn(servicer.peers, CONNECTIONS)


@pytest.mark.parametrize("connections", [None, 1])
def test_one_connection_carries_every_call(
    grpc_addr: str, servicer: ScriptedServicer, connections: int | None
) -> None:
    if connections is None:
        genre = GenreClient(grpc_addr)
    else:
        genre = GenreClient(grpc_addr, connections=connections)
    with genre:
        for _ in range(CALLS):
            genre.classify_features("gtzan-mlp", [ROW])

    assert len(servicer.peers) == CALLS
    assert len(set(servicer.peers)) == 1


def test_features_and_streams_take_turns_with_the_rest(
    grpc_addr: str, servicer: ScriptedServicer
) -> None:
    with GenreClient(grpc_addr, connections=2) as genre:
        genre.classify_features("gtzan-mlp", [ROW])
        list(genre.stream_audio("gtzan-cnn", [b"\x00\x00"], sample_rate=8000))
        genre.classify_dense("gtzan-mlp", ["tempo"], [[1.0]])
        list(genre.stream_audio("gtzan-cnn", [b"\x00\x00"], sample_rate=8000))

    assert_taken_in_turn(servicer.peers, 2)


def test_a_stream_takes_its_connection_when_called_not_when_read(
    grpc_addr: str, servicer: ScriptedServicer
) -> None:
    with GenreClient(grpc_addr, connections=2) as genre:
        first = genre.stream_audio("gtzan-cnn", [b"\x00\x00"], sample_rate=8000)
        second = genre.stream_audio("gtzan-cnn", [b"\x00\x00"], sample_rate=8000)
        list(second)
        list(first)
        genre.list_models()  # the turn has come back round to the first stream's connection

    second_peer, first_peer, unary_peer = servicer.peers
    assert first_peer != second_peer
    assert unary_peer == first_peer


def test_a_retry_goes_out_on_the_next_connection(
    grpc_addr: str, servicer: ScriptedServicer
) -> None:
    servicer.fail("ListModels", grpc.StatusCode.UNAVAILABLE, "worker restarting", times=2)

    with GenreClient(grpc_addr, connections=CONNECTIONS, retry=FAST_RETRY) as genre:
        genre.list_models()

    assert servicer.calls["ListModels"] == 3
    assert len(set(servicer.peers)) == CONNECTIONS


def test_caller_options_cannot_fold_the_connections_into_one(
    grpc_addr: str, servicer: ScriptedServicer
) -> None:
    shared_pool = {LOCAL_SUBCHANNEL_POOL: 0}
    with GenreClient(grpc_addr, connections=CONNECTIONS, channel_options=shared_pool) as genre:
        for _ in range(CONNECTIONS):
            genre.list_models()

    assert len(set(servicer.peers)) == CONNECTIONS


def test_stub_and_channel_are_the_first_connection(
    grpc_addr: str, servicer: ScriptedServicer
) -> None:
    with GenreClient(grpc_addr, connections=CONNECTIONS) as genre:
        genre.list_models()
        genre.list_models()
        genre.stub.ListModels(genre_pb2.ListModelsRequest(), timeout=5)
        genre_pb2_grpc.GenreClassifierStub(genre.channel).ListModels(
            genre_pb2.ListModelsRequest(), timeout=5
        )

    first, second, via_stub, via_channel = servicer.peers
    assert first != second
    assert via_stub == via_channel == first


def test_close_closes_every_connection(grpc_addr: str, servicer: ScriptedServicer) -> None:
    genre = GenreClient(grpc_addr, connections=CONNECTIONS)
    genre.list_models()
    genre.close()

    for _ in range(CONNECTIONS):
        with pytest.raises(ValueError, match="closed channel"):
            genre.list_models()


@pytest.mark.parametrize("connections", [0, -2])
def test_fewer_than_one_connection_is_a_value_error(grpc_addr: str, connections: int) -> None:
    with pytest.raises(ValueError, match="connections must be >= 1"):
        GenreClient(grpc_addr, connections=connections)


async def test_aio_calls_take_the_connections_in_turn(
    grpc_addr: str, servicer: ScriptedServicer
) -> None:
    async with AsyncGenreClient(grpc_addr, connections=CONNECTIONS) as genre:
        for _ in range(CALLS):
            await genre.list_models()

    assert len(servicer.peers) == CALLS
    assert_taken_in_turn(servicer.peers, CONNECTIONS)


async def test_aio_one_connection_carries_every_call(
    grpc_addr: str, servicer: ScriptedServicer
) -> None:
    async with AsyncGenreClient(grpc_addr, connections=1) as genre:
        for _ in range(CALLS):
            await genre.classify_features("gtzan-mlp", [ROW])

    assert len(servicer.peers) == CALLS
    assert len(set(servicer.peers)) == 1


async def test_aio_features_and_streams_take_turns_with_the_rest(
    grpc_addr: str, servicer: ScriptedServicer
) -> None:
    async with AsyncGenreClient(grpc_addr, connections=2) as genre:
        await genre.classify_features("gtzan-mlp", [ROW])
        async for _ in genre.stream_audio("gtzan-cnn", [b"\x00\x00"], sample_rate=8000):
            pass
        await genre.classify_dense("gtzan-mlp", ["tempo"], [[1.0]])
        async for _ in genre.stream_audio("gtzan-cnn", [b"\x00\x00"], sample_rate=8000):
            pass

    assert_taken_in_turn(servicer.peers, 2)


async def test_aio_a_retry_goes_out_on_the_next_connection(
    grpc_addr: str, servicer: ScriptedServicer
) -> None:
    servicer.fail("ClassifyFeatures", grpc.StatusCode.UNAVAILABLE, "worker restarting", times=2)

    async with AsyncGenreClient(grpc_addr, connections=CONNECTIONS, retry=FAST_RETRY) as genre:
        await genre.classify_features("gtzan-mlp", [ROW])

    assert servicer.calls["ClassifyFeatures"] == 3
    assert len(set(servicer.peers)) == CONNECTIONS


async def test_aio_close_closes_every_connection(
    grpc_addr: str, servicer: ScriptedServicer
) -> None:
    genre = AsyncGenreClient(grpc_addr, connections=CONNECTIONS)
    await genre.list_models()
    await genre.close()

    for _ in range(CONNECTIONS):
        with pytest.raises(grpc.aio.UsageError, match="closed"):
            await genre.list_models()


async def test_aio_fewer_than_one_connection_is_a_value_error(grpc_addr: str) -> None:
    with pytest.raises(ValueError, match="connections must be >= 1"):
        AsyncGenreClient(grpc_addr, connections=0)


def test_one_connection_keeps_the_plain_channel_options() -> None:
    assert connection_options(None, 1) == merged_channel_options()
    assert (LOCAL_SUBCHANNEL_POOL, 1) in connection_options({"grpc.lb": "x"}, 2)


def test_round_robin_cycles_and_needs_an_item() -> None:
    turns = RoundRobin(["a", "b", "c"])
    assert [turns.next() for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]
    assert turns.first == "a"
    with pytest.raises(ValueError, match="at least one"):
        RoundRobin([])
