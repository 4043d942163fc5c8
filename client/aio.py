"""The asyncio client: :class:`client.client.GenreClient`'s API with ``async`` methods.

Construct it inside a running event loop (grpc.aio binds the channel to the loop it is made in).
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Self

import grpc
import grpc.aio
import numpy.typing as npt

from client.channels import ChannelOptions, RoundRobin, open_channels
from client.errors import from_rpc_error
from client.options import DEFAULT_RETRY, CallSettings, RetryPolicy
from client.requests import (
    Encoding,
    StreamSettings,
    audio_request,
    dense_request,
    features_request,
)
from client.results import FeaturesResult, ModelInfo, StreamUpdate
from client.retry import acall_with_retry
from client.stubs import AsyncGenreStub, make_async_stub
from genre.v1 import genre_pb2


class AsyncGenreClient:
    """Talks to one genre-serve target; use ``async with`` or ``await close()``.

    Deadlines, retries, errors, channel options and ``connections`` (N connections taken in
    turn, because a server's worker processes share one port and the kernel balances
    connections, not calls) behave exactly as in ``GenreClient``.
    """

    def __init__(
        self,
        target: str,
        *,
        deadline_seconds: float = 10.0,
        stream_deadline_seconds: float = 3600.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        channel_options: Mapping[str, int | str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        connections: int = 1,
    ) -> None:
        self._settings = CallSettings(deadline_seconds, stream_deadline_seconds, retry)
        self._channels = open_channels(
            lambda options: _open_channel(target, credentials, options),
            connections=connections,
            overrides=channel_options,
        )
        self._stubs = RoundRobin([make_async_stub(channel) for channel in self._channels])
        self.target = target

    @property
    def stub(self) -> AsyncGenreStub:
        """The raw generated stub over the first asyncio channel."""
        return self._stubs.first

    @property
    def channel(self) -> grpc.aio.Channel:
        """The first channel."""
        return self._channels[0]

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def list_models(
        self,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline, sent to the server
    ) -> list[ModelInfo]:
        """Every model version the server has loaded."""

        async def attempt(seconds: float) -> genre_pb2.ListModelsResponse:
            return await self._stubs.next().ListModels(
                genre_pb2.ListModelsRequest(), timeout=seconds
            )

        response = await acall_with_retry(
            attempt,
            method="ListModels",
            policy=self._settings.retry,
            total_seconds=self._settings.unary_timeout(timeout),
        )
        return [ModelInfo.from_proto(info) for info in response.models]

    async def classify_features(
        self,
        model: str,
        rows: Sequence[Mapping[str, float]],
        *,
        version: str = "",
        top_k: int = 0,
        min_probability: float | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline, sent to the server
        titles: Sequence[str] | None = None,
    ) -> FeaturesResult:
        """One ranked genre list per row; a feature left out of a row is imputed if it can be.
        ``titles``: each row's track title ("" for none), for models that take one."""
        request = features_request(
            model,
            rows,
            version=version,
            top_k=top_k,
            min_probability=min_probability,
            titles=titles,
        )
        return await self._classify(request, timeout)

    async def classify_dense(
        self,
        model: str,
        feature_names: Sequence[str],
        values: npt.ArrayLike,
        *,
        version: str = "",
        top_k: int = 0,
        min_probability: float | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline, sent to the server
    ) -> FeaturesResult:
        """Bulk form: ``values`` is ``(N, F)``, columns in ``feature_names`` order."""
        request = dense_request(
            model,
            feature_names,
            values,
            version=version,
            top_k=top_k,
            min_probability=min_probability,
        )
        return await self._classify(request, timeout)

    async def _classify(
        self, request: genre_pb2.ClassifyFeaturesRequest, override: float | None
    ) -> FeaturesResult:
        async def attempt(seconds: float) -> genre_pb2.ClassifyFeaturesResponse:
            return await self._stubs.next().ClassifyFeatures(request, timeout=seconds)

        response = await acall_with_retry(
            attempt,
            method="ClassifyFeatures",
            policy=self._settings.retry,
            total_seconds=self._settings.unary_timeout(override),
        )
        return FeaturesResult.from_proto(response)

    def stream_audio(
        self,
        model: str,
        chunks: Iterable[bytes] | AsyncIterable[bytes],
        *,
        sample_rate: int,
        encoding: Encoding = "s16le",
        channels: int = 1,
        hop_seconds: float = 0.0,
        top_k: int = 0,
        version: str = "",
        min_probability: float | None = None,
        silence_threshold_dbfs: float | None = None,
        timeout: float | None = None,
    ) -> AsyncGenerator[StreamUpdate, None]:
        """An async generator of answers to the PCM ``chunks`` (sync or async iterable).

        Arguments are checked here, when called, not at the first ``anext()``; ``aclose()`` the
        generator to cancel the call early. Never retried.
        Known gRPC bug (grpc/grpc#36066, grpcio 1.85): when the server ends the stream with an
        error while this client is still sending, grpc.aio may report ``INTERNAL: Internal error
        from Core`` instead of the server's status; the blocking client reports it correctly.
        """
        settings = StreamSettings(
            model,
            sample_rate,
            encoding,
            channels,
            hop_seconds,
            top_k,
            version,
            min_probability=min_probability,
            silence_threshold_dbfs=silence_threshold_dbfs,
        )
        seconds = self._settings.stream_timeout(timeout)
        # The connection is picked here, not at the first anext(), so streams rotate in call order.
        return self._stream(self._stubs.next(), settings, chunks, seconds)

    async def _stream(
        self,
        stub: AsyncGenreStub,
        settings: StreamSettings,
        chunks: Iterable[bytes] | AsyncIterable[bytes],
        seconds: float,
    ) -> AsyncGenerator[StreamUpdate, None]:
        source = _RecordingChunks(chunks)
        call = stub.ClassifyAudioStream(_requests(settings, source), timeout=seconds)
        cancel: Callable[[], bool] = call.cancel
        try:
            async for response in call:
                yield StreamUpdate.from_proto(response)
        except grpc.RpcError as error:
            if source.error is not None:
                raise source.error from error
            raise from_rpc_error(error, method="ClassifyAudioStream") from error
        except asyncio.CancelledError:
            # grpc.aio cancels the call locally when the request source raises; only then is
            # the cancellation ours to translate. Any other cancellation propagates untouched.
            if source.error is not None:
                raise source.error from None
            raise
        finally:
            cancel()


def _open_channel(
    target: str, credentials: grpc.ChannelCredentials | None, options: ChannelOptions
) -> grpc.aio.Channel:
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, credentials, options=options)


class _RecordingChunks(AsyncIterable[bytes]):
    """The caller's chunk source (sync or async), remembering the exception it raised, so the
    stream re-raises it instead of gRPC's bare CANCELLED."""

    def __init__(self, chunks: Iterable[bytes] | AsyncIterable[bytes]) -> None:
        self._chunks = chunks
        self.error: Exception | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if isinstance(self._chunks, AsyncIterable):
                async for chunk in self._chunks:
                    yield chunk
            else:
                for chunk in self._chunks:
                    yield chunk
        except Exception as error:
            self.error = error
            raise


async def _requests(
    settings: StreamSettings, chunks: AsyncIterable[bytes]
) -> AsyncIterator[genre_pb2.ClassifyAudioStreamRequest]:
    """The config message, then one message per non-empty chunk, in order."""
    yield settings.config_request()
    async for chunk in chunks:
        if chunk:
            yield audio_request(chunk)
