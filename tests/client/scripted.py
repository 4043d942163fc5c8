"""A scripted GenreClassifier for client tests: deterministic answers and injected failures.

A fake is right here, and only here: the real server is another team's work in progress, and
what the client tests need (UNAVAILABLE exactly twice, a handler slower than the deadline) is
something no real server does on demand. Answers are a pure function of the request, so tests
can predict them with :func:`expected_scores`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence

import grpc
import numpy as np

from genre.v1 import genre_pb2, genre_pb2_grpc

LABELS = ("blues", "jazz", "metal", "rock")
PROBABILITIES = (0.4, 0.3, 0.2, 0.1)
"""The top label gets 0.4, the next 0.3 ... (see :func:`expected_scores`)."""

GTZAN_FEATURES = (("tempo", False), ("rms_mean", True), ("chroma_stft_mean", True))


def _model(name: str, version: str, *, audio: bool, default: bool) -> genre_pb2.ModelVersionInfo:
    info = genre_pb2.ModelVersionInfo(
        model=genre_pb2.ModelRef(name=name, version=version),
        kind=genre_pb2.AUDIO if audio else genre_pb2.FEATURES,
        labels=LABELS,
        metrics=[
            genre_pb2.Metric(name="accuracy", value=0.75),
            genre_pb2.Metric(name="macro_f1", value=0.7),
        ],
        split_protocol="grouped by artist, 80/10/10",
        is_default=default,
    )
    if audio:
        info.audio.CopyFrom(
            genre_pb2.AudioFrontEnd(sample_rate=22050, n_fft=2048, hop_length=512, n_mels=128)
        )
    else:
        info.features.extend(genre_pb2.FeatureSpec(name=n, imputable=i) for n, i in GTZAN_FEATURES)
    return info


MODELS = (
    _model("gtzan-mlp", "1", audio=False, default=False),
    _model("gtzan-mlp", "2", audio=False, default=True),
    _model("gtzan-cnn", "1", audio=True, default=True),
)


def expected_scores(values: Sequence[float], top_k: int = 0) -> list[tuple[str, float]]:
    """What the servicer answers for a row: ``LABELS[round(sum(values)) % 4]`` is on top.

    Probabilities are as they arrive: rounded to float32 by the wire format.
    """
    shift = round(sum(values)) % len(LABELS)
    scores = [
        (LABELS[(shift + rank) % len(LABELS)], float(np.float32(p)))
        for rank, p in enumerate(PROBABILITIES)
    ]
    return scores[:top_k] if top_k else scores


def _classification(values: Sequence[float], top_k: int) -> genre_pb2.Classification:
    # Deliberately lowest first: the client must not trust the server's order.
    ranked = reversed(expected_scores(values, top_k))
    return genre_pb2.Classification(
        scores=[genre_pb2.GenreScore(genre=g, probability=p) for g, p in ranked]
    )


class ScriptedServicer(genre_pb2_grpc.GenreClassifierServicer):
    """Counts calls, keeps requests, deadlines and peers, fails on cue; thread-safe.

    ``peers`` holds each call's ``context.peer()`` (``ipv4:127.0.0.1:PORT``, the client's end of
    the TCP connection), in the order the calls were entered, so tests can tell connections apart.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls: Counter[str] = Counter()
            self.failures: dict[str, deque[tuple[grpc.StatusCode, str]]] = {}
            self.feature_requests: list[genre_pb2.ClassifyFeaturesRequest] = []
            self.stream_requests: list[genre_pb2.ClassifyAudioStreamRequest] = []
            self.time_remaining: list[float | None] = []
            self.peers: list[str] = []
            self.delay_seconds = 0.0

    def fail(self, method: str, code: grpc.StatusCode, details: str, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` end with ``code`` and ``details``."""
        with self._lock:
            self.failures.setdefault(method, deque()).extend([(code, details)] * times)

    def _enter(self, method: str, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.calls[method] += 1
            self.time_remaining.append(context.time_remaining())
            self.peers.append(context.peer())
            queued = self.failures.get(method)
            failure = queued.popleft() if queued else None
            delay = self.delay_seconds
        if delay:
            time.sleep(delay)
        if failure is not None:
            context.abort(*failure)

    def ListModels(
        self, request: genre_pb2.ListModelsRequest, context: grpc.ServicerContext
    ) -> genre_pb2.ListModelsResponse:
        self._enter("ListModels", context)
        return genre_pb2.ListModelsResponse(models=MODELS)

    def ClassifyFeatures(
        self, request: genre_pb2.ClassifyFeaturesRequest, context: grpc.ServicerContext
    ) -> genre_pb2.ClassifyFeaturesResponse:
        self._enter("ClassifyFeatures", context)
        with self._lock:
            self.feature_requests.append(request)
        if request.HasField("dense"):
            width = len(request.dense.feature_names)
            flat = list(request.dense.values)
            rows = [flat[start : start + width] for start in range(0, len(flat), width)]
        else:
            rows = [list(row.features.values()) for row in request.rows]
        version = request.model.version or "2"
        return genre_pb2.ClassifyFeaturesResponse(
            model=genre_pb2.ModelRef(name=request.model.name, version=version),
            results=[_classification(row, request.top_k) for row in rows],
        )

    def ClassifyAudioStream(
        self,
        request_iterator: Iterator[genre_pb2.ClassifyAudioStreamRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[genre_pb2.ClassifyAudioStreamResponse]:
        """One window answer per audio chunk (top genre: chunk count), then a final one.

        A scripted failure ends the call only once the client has half-closed: a grpc.aio client
        still writing when the status arrives reports INTERNAL instead of it (grpc/grpc#36066),
        which would make the failure tests flaky.
        """
        failing = bool(self.failures.get("ClassifyAudioStream"))
        received = 0
        for request in request_iterator:
            with self._lock:
                self.stream_requests.append(request)
            if request.HasField("audio") and not failing:
                received += 1
                yield self._update(received, final=False)
        self._enter("ClassifyAudioStream", context)
        yield self._update(received, final=True)

    @staticmethod
    def _update(count: int, *, final: bool) -> genre_pb2.ClassifyAudioStreamResponse:
        return genre_pb2.ClassifyAudioStreamResponse(
            model=genre_pb2.ModelRef(name="gtzan-cnn", version="1"),
            window_start_seconds=float(max(count - 1, 0)),
            window_end_seconds=float(count),
            window=_classification([count], 0),
            track=_classification([0], 0),
            final=final,
            padded=final and count == 0,
            audio_seconds=float(count),
        )
