"""genre-serve's Python client: sync and asyncio clients, no torch.

Another service installs the base package and gets only grpcio, protobuf and numpy (PyAV, the
``client`` extra, is needed only to decode audio files, and is imported only then)::

    from client import GenreClient

    with GenreClient("localhost:50051") as genre:
        result = genre.classify_features("gtzan-mlp", [{"tempo": 120.0, ...}])
        print(result.top())
"""

from client.aio import AsyncGenreClient
from client.client import GenreClient
from client.errors import GenreClientError
from client.options import DEFAULT_CHANNEL_OPTIONS, CallSettings, RetryPolicy
from client.pacing import paced
from client.requests import Encoding, StreamSettings
from client.results import (
    AudioFrontEndInfo,
    FeatureInfo,
    FeaturesResult,
    ModelInfo,
    Scores,
    StreamUpdate,
)
from client.stubs import AsyncGenreStub, GenreStub

__all__ = [
    "DEFAULT_CHANNEL_OPTIONS",
    "AsyncGenreClient",
    "AsyncGenreStub",
    "AudioFrontEndInfo",
    "CallSettings",
    "Encoding",
    "FeatureInfo",
    "FeaturesResult",
    "GenreClient",
    "GenreClientError",
    "GenreStub",
    "ModelInfo",
    "RetryPolicy",
    "Scores",
    "StreamSettings",
    "StreamUpdate",
    "paced",
]
