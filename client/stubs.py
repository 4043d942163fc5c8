"""Typed views of the generated stub, whose ``_grpc.py`` ships without type information.

The Protocols let mypy check every call the clients make; the generated classes satisfy them
structurally, and advanced callers get the same typed stub from ``GenreClient.stub``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

import grpc
import grpc.aio

from genre.v1 import genre_pb2, genre_pb2_grpc


class GenreStub(Protocol):
    """The blocking stub: ``genre_pb2_grpc.GenreClassifierStub`` over a ``grpc.Channel``."""

    ClassifyFeatures: grpc.UnaryUnaryMultiCallable[
        genre_pb2.ClassifyFeaturesRequest, genre_pb2.ClassifyFeaturesResponse
    ]
    ClassifyAudioStream: grpc.StreamStreamMultiCallable[
        genre_pb2.ClassifyAudioStreamRequest, genre_pb2.ClassifyAudioStreamResponse
    ]
    ListModels: grpc.UnaryUnaryMultiCallable[
        genre_pb2.ListModelsRequest, genre_pb2.ListModelsResponse
    ]


class AsyncGenreStub(Protocol):
    """The asyncio stub: the same generated class over a ``grpc.aio.Channel``."""

    ClassifyFeatures: grpc.aio.UnaryUnaryMultiCallable[
        genre_pb2.ClassifyFeaturesRequest, genre_pb2.ClassifyFeaturesResponse
    ]
    ClassifyAudioStream: grpc.aio.StreamStreamMultiCallable[
        genre_pb2.ClassifyAudioStreamRequest, genre_pb2.ClassifyAudioStreamResponse
    ]
    ListModels: grpc.aio.UnaryUnaryMultiCallable[
        genre_pb2.ListModelsRequest, genre_pb2.ListModelsResponse
    ]


# Bound through a typed name: calling the untyped generated class directly fails mypy strict.
_GENERATED: Callable[[grpc.Channel | grpc.aio.Channel], object] = genre_pb2_grpc.GenreClassifierStub


def make_stub(channel: grpc.Channel) -> GenreStub:
    return cast(GenreStub, _GENERATED(channel))


def make_async_stub(channel: grpc.aio.Channel) -> AsyncGenreStub:
    return cast(AsyncGenreStub, _GENERATED(channel))
