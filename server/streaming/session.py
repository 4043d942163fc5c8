"""ClassifyAudioStream sessions: config validation, PCM to windows, batched scoring, responses.

One session per open stream. It keeps only a bounded window buffer, sends every full window of
every stream through the model's shared batcher (so many streams share one forward pass), answers
one response per hop with the window's scores and the running track average, and a final
response after the client half-closes — or when the server starts draining, so streams end
cleanly during a roll-out. Limits fail with the status the contract names.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from genre.v1 import genre_pb2
from modelcore.abstention import (
    Abstention,
    Policy,
    TrackTally,
    Verdict,
    level_dbfs,
    window_abstention,
)
from modelcore.frontend import resample
from server.abstention import check_min_probability, check_silence_dbfs, resolve_min_probability
from server.config import ServerConfig
from server.errors import (
    DeadlineExpired,
    FailedPrecondition,
    InvalidArgument,
    Overloaded,
    TooLarge,
)
from server.features import FloatArray, ranked
from server.metrics import ServerMetrics
from server.pod.shares import PodShares
from server.registry import Registry, ServedVersion
from server.runner import split_outputs
from server.signatures import AudioSignature
from server.streaming.lateness import Lateness
from server.streaming.pcm import SAMPLE_TYPES, PcmDecoder, Window, WindowCutter

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 48000
MIN_HOP_SECONDS = 0.1
_BYTES_PER_SAMPLE = {encoding: dtype.itemsize for encoding, dtype in SAMPLE_TYPES.items()}


@dataclass(frozen=True)
class StreamLimits:
    """Per-stream bounds; the values come from ``ServerConfig`` alone."""

    max_streams: int
    max_chunk_bytes: int
    max_stream_seconds: float
    idle_timeout_seconds: float
    admission_load: float = 0.0
    audio_windows_per_second: float = 0.0
    latency_bound_seconds: float = 0.0
    silence_dbfs: float = -60.0  # streams that do not set their own
    min_probability: float = -1.0  # -1: each model's own

    @classmethod
    def from_config(cls, config: ServerConfig) -> StreamLimits:
        return cls(
            max_streams=config.max_streams,
            max_chunk_bytes=config.max_chunk_bytes,
            max_stream_seconds=config.max_stream_seconds,
            idle_timeout_seconds=config.stream_idle_timeout_seconds,
            admission_load=config.stream_admission_load,
            audio_windows_per_second=config.audio_windows_per_second,
            latency_bound_seconds=config.stream_latency_bound_ms / 1000,
            silence_dbfs=config.silence_threshold_dbfs,
            min_probability=config.min_probability,
        )


@dataclass(frozen=True)
class StreamPlan:
    """A validated StreamConfig bound to the audio model version that will answer it."""

    served: ServedVersion
    audio: AudioSignature
    sample_rate: int
    encoding: int
    channels: int
    window_samples: int  # at the stream's rate
    hop_samples: int  # at the stream's rate
    top_k: int
    min_probability: float | None = None  # the stream's own, if it set one
    silence_dbfs: float | None = None  # the stream's own, if it set one

    def policy(self, limits: StreamLimits) -> Policy:
        """What this stream abstains on: its own settings, else the server's, else the
        model's."""
        manifest = self.served.manifest
        return Policy(
            min_probability=resolve_min_probability(
                self.min_probability, limits.min_probability, manifest.min_probability
            ),
            silence_dbfs=limits.silence_dbfs if self.silence_dbfs is None else self.silence_dbfs,
            music_threshold=manifest.music_threshold,
        )


def plan_stream(config: genre_pb2.StreamConfig, registry: Registry) -> StreamPlan:
    served = registry.resolve(config.model.name, config.model.version)
    audio = served.signature
    if not isinstance(audio, AudioSignature):
        raise InvalidArgument(
            f"config.model.name: {served.name!r} is a {served.kind} model; use ClassifyFeatures"
        )
    if not MIN_SAMPLE_RATE <= config.sample_rate <= MAX_SAMPLE_RATE:
        raise InvalidArgument(
            f"config.sample_rate: {config.sample_rate} Hz is outside "
            f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )
    if config.encoding not in _BYTES_PER_SAMPLE:
        names = genre_pb2.AudioEncoding.keys()
        known = " or ".join(n for n in names if genre_pb2.AudioEncoding.Value(n) in SAMPLE_TYPES)
        raise InvalidArgument(f"config.encoding: must be {known}")
    if config.channels not in (1, 2):
        raise InvalidArgument(f"config.channels: {config.channels} is not 1 or 2")
    frontend = audio.frontend_config
    hop_seconds = config.hop_seconds or frontend.default_hop_seconds
    if not MIN_HOP_SECONDS <= hop_seconds <= frontend.window_seconds:
        raise InvalidArgument(
            f"config.hop_seconds: {hop_seconds:g} s is outside {MIN_HOP_SECONDS:g}-"
            f"{frontend.window_seconds:g} s (the model's window)"
        )
    return StreamPlan(
        served=served,
        audio=audio,
        sample_rate=int(config.sample_rate),
        encoding=int(config.encoding),
        channels=int(config.channels),
        window_samples=round(frontend.window_seconds * config.sample_rate),
        hop_samples=max(1, round(hop_seconds * config.sample_rate)),
        top_k=int(config.top_k),
        min_probability=(
            check_min_probability(config.min_probability, "config.min_probability")
            if config.HasField("min_probability")
            else None
        ),
        silence_dbfs=(
            check_silence_dbfs(config.silence_threshold_dbfs, "config.silence_threshold_dbfs")
            if config.HasField("silence_threshold_dbfs")
            else None
        ),
    )


class StreamSlots:
    """Counts open streams and refuses one past the limit: this process's, or with ``shares``
    the pod's (``limit`` per worker times the workers, wherever the streams landed)."""

    def __init__(self, limit: int, metrics: ServerMetrics, shares: PodShares | None = None) -> None:
        self._limit = limit
        self._open = 0
        self._gauge = metrics.open_streams
        self._shares = shares

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        shares = self._shares
        if shares is None:
            open_now, limit, where = self._open, self._limit, ""
        else:
            open_now, limit = shares.open_streams(), self._limit * shares.workers
            where = f" on this pod's {shares.workers} workers"
        if open_now >= limit:
            raise Overloaded(f"{open_now} streams are open{where} (limit {limit}); retry later")
        self._open += 1
        self._count()
        try:
            yield
        finally:
            self._open -= 1
            self._count()

    def _count(self) -> None:
        self._gauge.set(self._open)
        if self._shares is not None:
            self._shares.set_streams(self._open)


class StreamSession:
    """The state of one stream after its config: decoder, window buffer, running track sum."""

    def __init__(
        self,
        plan: StreamPlan,
        limits: StreamLimits,
        metrics: ServerMetrics,
        lateness: Lateness | None = None,
    ) -> None:
        self._plan = plan
        self._lateness = lateness
        self._limits = limits
        self._metrics = metrics
        self._decoder = PcmDecoder(plan.encoding, plan.channels)
        frame_bytes = _BYTES_PER_SAMPLE[plan.encoding] * plan.channels
        self._cutter = WindowCutter(
            plan.window_samples, plan.hop_samples, limits.max_chunk_bytes // frame_bytes + 1
        )
        self._policy = plan.policy(limits)
        self._track = TrackTally(len(plan.served.labels), self._policy)
        self._last: tuple[Window, Verdict] | None = None
        self._started = time.monotonic()
        self._model_label = plan.served.name
        self.windows_scored = 0

    @property
    def audio_seconds(self) -> float:
        return self._cutter.total / self._plan.sample_rate

    async def feed(self, data: bytes) -> list[genre_pb2.ClassifyAudioStreamResponse]:
        """One message's audio: the responses of the windows it completed (usually none: a
        100 ms chunk completes a window once per hop), so a message costs no generator."""
        if len(data) > self._limits.max_chunk_bytes:
            raise TooLarge(
                f"audio.data: a chunk of {len(data)} bytes exceeds the "
                f"{self._limits.max_chunk_bytes}-byte limit"
            )
        arrived = time.monotonic()
        samples = self._decoder.decode(data)
        windows = self._cutter.push(samples)
        self._metrics.child(self._metrics.audio_seconds, self._model_label).inc(
            samples.size / self._plan.sample_rate
        )
        if self.audio_seconds > self._limits.max_stream_seconds:
            raise TooLarge(
                f"audio: the stream exceeds {self._limits.max_stream_seconds:g} s of audio"
            )
        if not windows:
            return []
        verdicts = await self._judge([window.samples for window in windows])
        responses = []
        for window, verdict in zip(windows, verdicts, strict=True):
            self._last = (window, verdict)
            responses.append(self._response(window, verdict, final=False, padded=False))
            latency = time.monotonic() - arrived
            self._metrics.child(self._metrics.window_latency, self._model_label).observe(latency)
            if self._lateness is not None:
                self._lateness.observe_window(latency)
        return responses

    async def finish(self) -> genre_pb2.ClassifyAudioStreamResponse:
        """The final response: the track answer and its last window.

        Audio after the last full window is covered by one more window flush with the end, as
        training covers a track's tail, so the final track answer averages the same windows an
        offline evaluation would. Audio shorter than one window is zero-padded to one.
        """
        self._metrics.child(self._metrics.stream_real_time_factor, self._model_label).observe(
            (time.monotonic() - self._started) / max(self.audio_seconds, 1e-9)
        )
        tail = self._cutter.tail()
        if tail is not None:
            [verdict] = await self._judge([tail.samples])
            return self._final(tail, verdict, padded=False)
        if self._last is not None:
            window, verdict = self._last
            return self._final(window, verdict, padded=False)
        remainder = self._cutter.remainder()
        if remainder.samples.size == 0:
            raise InvalidArgument("audio: the stream ended before any audio arrived")
        padded = np.zeros(self._plan.window_samples, dtype=np.float32)
        padded[: remainder.samples.size] = remainder.samples
        [verdict] = await self._judge([padded], levels=[level_dbfs(remainder.samples)])
        return self._final(Window(0, padded), verdict, padded=True)

    def _final(
        self, window: Window, verdict: Verdict, padded: bool
    ) -> genre_pb2.ClassifyAudioStreamResponse:
        response = self._response(window, verdict, final=True, padded=padded)
        if response.track.abstention:
            reason = Abstention(response.track.abstention).reason
            self._metrics.child(self._metrics.abstentions, self._model_label, "track", reason).inc()
        return response

    async def _judge(
        self, windows: list[FloatArray], levels: list[float] | None = None
    ) -> list[Verdict]:
        """Scores windows and decides, for each, whether to answer; adds them to the track.
        ``levels`` overrides the measured level (a padded window is as loud as its audio)."""
        outputs = await self._score(windows)
        probabilities, music = split_outputs(outputs)
        if levels is None:
            levels = [level_dbfs(samples) for samples in windows]
        verdicts = []
        for scores, music_probability, level in zip(
            probabilities, music.tolist(), levels, strict=True
        ):
            abstention = window_abstention(
                self._policy, level, music_probability, float(scores.max())
            )
            if abstention:
                self._metrics.child(
                    self._metrics.abstentions, self._model_label, "window", abstention.reason
                ).inc()
            self._track.add(scores, abstention, music_probability)
            verdicts.append(Verdict(scores, abstention, music_probability))
        return verdicts

    async def _score(self, windows: list[FloatArray]) -> FloatArray:
        """Windows at the stream's rate -> the runner's outputs (probabilities, then the music
        probability: ``split_outputs``), through the model's shared batcher."""
        frontend = self._plan.audio.frontend_config
        stacked = np.stack(windows)
        if self._plan.sample_rate != frontend.sample_rate:
            stacked = await asyncio.get_running_loop().run_in_executor(
                None,
                _resample_windows,
                stacked,
                self._plan.sample_rate,
                frontend.sample_rate,
                frontend.window_samples,
            )
        result = await self._plan.served.batcher.submit(stacked)
        self.windows_scored += len(windows)
        return result.outputs

    def _response(
        self, window: Window, verdict: Verdict, final: bool, padded: bool
    ) -> genre_pb2.ClassifyAudioStreamResponse:
        rate = self._plan.sample_rate
        labels = self._plan.served.labels
        track = self._track.answer()
        window_answer = ranked(verdict.scores[None, :], labels, self._plan.top_k)[0]
        window_answer.abstention = verdict.abstention  # type: ignore[assignment]
        track_answer = ranked(track.probabilities[None, :], labels, self._plan.top_k)[0]
        track_answer.abstention = track.abstention  # type: ignore[assignment]
        if not math.isnan(verdict.music_probability):
            window_answer.music_probability = verdict.music_probability
        if not math.isnan(track.music_probability):
            track_answer.music_probability = track.music_probability
        return genre_pb2.ClassifyAudioStreamResponse(
            model=genre_pb2.ModelRef(
                name=self._plan.served.name, version=str(self._plan.served.version)
            ),
            window_start_seconds=window.start / rate,
            window_end_seconds=(window.start + self._plan.window_samples) / rate,
            window=window_answer,
            track=track_answer,
            final=final,
            padded=padded,
            audio_seconds=self.audio_seconds,
        )


def _resample_windows(
    windows: FloatArray, orig_freq: int, new_freq: int, length: int
) -> FloatArray:
    """Each window resampled on its own (so chunking cannot matter), cut or padded to ``length``."""
    out = np.zeros((windows.shape[0], length), dtype=np.float32)
    for index, window in enumerate(windows):
        converted = resample(window, orig_freq, new_freq)[:length]
        out[index, : converted.size] = converted
    return out


async def send(
    context: grpc.aio.ServicerContext[Any, Any],
    response: genre_pb2.ClassifyAudioStreamResponse,
    stall_seconds: float,
) -> None:
    """Writes one response, giving up when the client made no room for it in ``stall_seconds``."""
    try:
        async with asyncio.timeout(stall_seconds):
            await context.write(response)
    except TimeoutError:
        raise DeadlineExpired(
            f"audio: the client read no response for {stall_seconds:g} s; the stream was closed"
        ) from None


def require_config(
    message: genre_pb2.ClassifyAudioStreamRequest | None,
) -> genre_pb2.StreamConfig:
    if message is None or message.WhichOneof("payload") != "config":
        raise FailedPrecondition("config: the first message of a stream must be its config")
    return message.config
