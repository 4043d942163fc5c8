"""The blocking client: typed methods over the generated stub, with deadlines and retries."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Self

import grpc
import numpy.typing as npt

from client.channels import ChannelOptions, RoundRobin, open_channels
from client.errors import from_rpc_error
from client.options import DEFAULT_RETRY, CallSettings, RetryPolicy
from client.requests import (
    Encoding,
    StreamSettings,
    dense_request,
    features_request,
    stream_requests,
)
from client.results import FeaturesResult, ModelInfo, StreamUpdate
from client.retry import call_with_retry
from client.stubs import GenreStub, make_stub
from genre.v1 import genre_pb2


class GenreClient:
    """Talks to one genre-serve target; use as a context manager or ``close()``.

    Every call carries a deadline (``deadline_seconds`` unless the call passes ``timeout=``), and
    unary calls retry UNAVAILABLE per ``retry`` inside that deadline. Failures raise
    :class:`client.errors.GenreClientError` with the status ``code`` and ``details``.
    ``channel_options`` are laid over :data:`client.options.DEFAULT_CHANNEL_OPTIONS`;
    ``credentials`` switches to a TLS channel.

    ``connections`` opens that many channels, each its own TCP connection, and every call (each
    attempt of a retried one, each new stream) takes the next in turn. A server with several
    worker processes shares one port between them and the kernel balances connections, not
    calls, so one connection reaches one worker; N connections spread the calls over up to N
    (and a retry after UNAVAILABLE goes out on another connection).
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
        self._stubs = RoundRobin([make_stub(channel) for channel in self._channels])
        self.target = target

    @property
    def stub(self) -> GenreStub:
        """The raw generated stub (over the first channel), for callers who need metadata,
        futures or other options."""
        return self._stubs.first

    @property
    def channel(self) -> grpc.Channel:
        """The first channel."""
        return self._channels[0]

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]:
        """Every model version the server has loaded."""
        response = call_with_retry(
            lambda seconds: self._stubs.next().ListModels(
                genre_pb2.ListModelsRequest(), timeout=seconds
            ),
            method="ListModels",
            policy=self._settings.retry,
            total_seconds=self._settings.unary_timeout(timeout),
        )
        return [ModelInfo.from_proto(info) for info in response.models]

    def classify_features(
        self,
        model: str,
        rows: Sequence[Mapping[str, float]],
        *,
        version: str = "",
        top_k: int = 0,
        min_probability: float | None = None,
        timeout: float | None = None,
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
        return self._classify(request, timeout)

    def classify_dense(
        self,
        model: str,
        feature_names: Sequence[str],
        values: npt.ArrayLike,
        *,
        version: str = "",
        top_k: int = 0,
        min_probability: float | None = None,
        timeout: float | None = None,
    ) -> FeaturesResult:
        """Bulk form: ``values`` is ``(N, F)``, columns in ``feature_names`` order, sent as
        float32."""
        request = dense_request(
            model,
            feature_names,
            values,
            version=version,
            top_k=top_k,
            min_probability=min_probability,
        )
        return self._classify(request, timeout)

    def _classify(
        self, request: genre_pb2.ClassifyFeaturesRequest, timeout: float | None
    ) -> FeaturesResult:
        response = call_with_retry(
            lambda seconds: self._stubs.next().ClassifyFeatures(request, timeout=seconds),
            method="ClassifyFeatures",
            policy=self._settings.retry,
            total_seconds=self._settings.unary_timeout(timeout),
        )
        return FeaturesResult.from_proto(response)

    def stream_audio(
        self,
        model: str,
        chunks: Iterable[bytes],
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
    ) -> Generator[StreamUpdate, None, None]:
        """Streams raw PCM ``chunks`` (any size) and yields each answer as it arrives.

        gRPC reads ``chunks`` on its own thread while this iterator yields answers, so a paced
        source (:func:`client.pacing.paced`) gets rolling answers in real time. The last update
        has ``final=True``; ``close()`` the generator to cancel the call early. Never retried:
        the chunks cannot be replayed. Arguments are checked here, before the first ``next()``.
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
        # The connection is picked here, not at the first next(), so streams rotate in call order.
        return self._stream(self._stubs.next(), settings, chunks, seconds)

    def _stream(
        self, stub: GenreStub, settings: StreamSettings, chunks: Iterable[bytes], timeout: float
    ) -> Generator[StreamUpdate, None, None]:
        source = _RecordingChunks(chunks)
        call = stub.ClassifyAudioStream(stream_requests(settings, source), timeout=timeout)
        # grpc-stubs leaves RpcContext.cancel untyped; a typed name keeps mypy strict happy.
        cancel: Callable[[], object] = call.cancel
        try:
            for response in call:
                yield StreamUpdate.from_proto(response)
        except grpc.RpcError as error:
            if source.error is not None:
                raise source.error from error
            raise from_rpc_error(error, method="ClassifyAudioStream") from error
        finally:
            cancel()


def _open_channel(
    target: str, credentials: grpc.ChannelCredentials | None, options: ChannelOptions
) -> grpc.Channel:
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, credentials, options=options)


class _RecordingChunks(Iterable[bytes]):
    """The caller's chunk source, remembering the exception it raised, if any.

    gRPC reads requests on its own thread and turns such an exception into a bare CANCELLED;
    remembering it lets the stream re-raise the caller's real error instead.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._chunks
        except Exception as error:
            self.error = error
            raise
