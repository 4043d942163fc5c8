"""Streams one audio file through ``ClassifyAudioStream`` and turns the outcome into its
``report.csv`` row, for ``genre-client organize``.

The file is decoded block by block while it streams (``client.audio.AudioFile``: FFmpeg's
decoders through PyAV), so memory stays at a chunk per file in flight however long the tracks
are, and a file that turns out to be damaged halfway fails at that point with the decoder's
reason. Faults are sorted by whose they
are: the file's (it cannot be decoded; the server refused its audio as INVALID_ARGUMENT) are
recorded with its size and mtime and not tried again until it changes; the server's (overloaded,
deadline, internal) are recorded without them, so the next run tries again; and a server that
cannot serve the run at all (unreachable, unauthorised, model gone) raises, ending the run.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import grpc
import numpy as np

from client.audio import AudioDecodeError, AudioFile
from client.errors import GenreClientError
from client.organize.flow import AnswerGate, Interrupted, Throttle
from client.organize.library import ReportRow
from client.requests import Encoding
from client.results import ModelInfo, StreamUpdate

OVERLOADED = grpc.StatusCode.RESOURCE_EXHAUSTED
"""Worth patient retries in the same run (unlike the client's own streams, a file can be
replayed from the start): the server refuses new streams while its recent window latency is
over its bound, which flat-out streams reach easily. UNAVAILABLE (draining, unreachable) gets a
few quick ones before the run stops."""
FATAL = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
"""After retries, no other file would fare better: the run stops (writing what it has)."""
FILE_FAULTS = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE})
MAX_SAMPLE_RATE = 48000
"""The highest ``sample_rate`` the contract's StreamConfig takes."""


class AudioClassifier(Protocol):
    """What ``organize`` needs of :class:`client.client.GenreClient` (a test may replace it)."""

    def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]: ...

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
        timeout: float | None = None,
    ) -> Generator[StreamUpdate, None, None]: ...


@dataclass(frozen=True)
class StreamPlan:
    """How every file of a run is streamed: one model version, one hop, same chunking."""

    model: str
    version: str
    hop_seconds: float = 0.0
    chunk_seconds: float = 1.0
    timeout: float | None = None
    attempts: int = 8
    """Per file while the server says RESOURCE_EXHAUSTED (about 20 s of backoff in all)."""
    unavailable_attempts: int = 3
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 5.0
    lead_seconds: float | None = None
    """Audio sent ahead of the last answer (None: all of it at once). Bounded, the windows a
    stream has waiting at the server stay few, so their latency stays under the bound past
    which the server refuses new streams; the answers pace the stream, however fast the
    server is. At least the window plus one hop, or the stream would wait for itself."""

    def __post_init__(self) -> None:
        if self.hop_seconds < 0:
            raise ValueError(f"--hop-seconds must be >= 0 (0: the model's), got {self.hop_seconds}")
        if self.chunk_seconds <= 0:
            raise ValueError(f"chunk_seconds must be > 0, got {self.chunk_seconds}")
        if min(self.attempts, self.unavailable_attempts) < 1:
            raise ValueError("attempts and unavailable_attempts must be >= 1")
        if self.lead_seconds is not None and self.lead_seconds <= 0:
            raise ValueError(f"lead_seconds must be > 0, got {self.lead_seconds}")


def _pcm_blocks(
    path: Path, frames: int, decimate: int, gate: AnswerGate, stop: threading.Event
) -> Iterator[bytes]:
    """Little-endian float32 PCM, ``frames`` (a multiple of ``decimate``) per chunk read; more
    than two channels mixed to mono; every ``decimate`` frames averaged into one.

    The generator opens and closes its own handle: gRPC reads it on its own thread, which can
    still be reading after the call has ended (a refused stream), and a decoder closed under a
    reader would fail it.
    """
    with AudioFile(path) as handle:
        sent = 0
        for block in handle.blocks(frames):
            sent += len(block)
            gate.wait_to_send(sent / handle.sample_rate)
            if stop.is_set():
                raise Interrupted
            if decimate > 1:
                whole = len(block) - len(block) % decimate
                block = block[:whole].reshape(-1, decimate, block.shape[1]).mean(axis=1)
            yield np.ascontiguousarray(block, dtype="<f4").tobytes()


def stream_rate(sample_rate: int) -> tuple[int, int]:
    """``(rate sent, decimation factor)``: rates over :data:`MAX_SAMPLE_RATE` (hi-res 88.2 and
    96 kHz, 176.4 and 192 kHz files) are divided by the smallest whole factor that fits, by
    averaging (a box filter: what it lets alias lies far above the model's 11 kHz of mel bands,
    and the server resamples properly from there)."""
    factor = max(1, math.ceil(sample_rate / MAX_SAMPLE_RATE))
    return sample_rate // factor, factor


def _final_update(
    client: AudioClassifier, path: Path, plan: StreamPlan, stop: threading.Event
) -> tuple[StreamUpdate, str]:
    """Streams ``path`` once; its final update and title. Decoding errors propagate as
    :class:`AudioDecodeError`, call failures as ``GenreClientError``."""
    with AudioFile(path) as handle:
        title = handle.title()
        file_rate = handle.sample_rate
        channels = handle.channels
    sample_rate, factor = stream_rate(file_rate)
    gate = AnswerGate(plan.lead_seconds, stop)
    frames = max(1, round(plan.chunk_seconds * sample_rate)) * factor
    updates = client.stream_audio(
        plan.model,
        _pcm_blocks(path, frames, factor, gate, stop),
        sample_rate=sample_rate,
        encoding="f32le",
        channels=channels,
        hop_seconds=plan.hop_seconds,
        version=plan.version,
        timeout=plan.timeout,
    )
    final = None
    try:
        for update in updates:
            if stop.is_set():
                updates.close()  # cancels the call: the server may still have windows to score
                raise Interrupted
            gate.answered(update.window_end)
            final = update
    finally:
        gate.finish()
    if final is None or not final.final:
        raise GenreClientError(grpc.StatusCode.INTERNAL, "the stream ended without a final answer")
    return final, title


def classify_file(
    client: AudioClassifier,
    path: Path,
    plan: StreamPlan,
    stop: threading.Event,
    throttle: Throttle | None = None,
) -> ReportRow | None:
    """The file's report row; ``None`` when the run was stopped while it streamed.

    Raises :class:`GenreClientError` for a status in :data:`FATAL` (after retries).
    """
    try:
        status = path.stat()
    except OSError as error:
        return ReportRow(path=str(path), model=plan.model, error=f"cannot read: {error.strerror}")
    unstamped = ReportRow(path=str(path), model=plan.model, version=plan.version)
    stamped = replace(unstamped, size=status.st_size, mtime_ns=status.st_mtime_ns)
    allowed = {OVERLOADED: plan.attempts, grpc.StatusCode.UNAVAILABLE: plan.unavailable_attempts}
    for attempt in range(1, max(allowed.values()) + 1):
        if throttle is not None and not throttle.acquire(stop):
            return None
        failure: GenreClientError | None = None
        try:
            final, title = _final_update(client, path, plan, stop)
        except Interrupted:
            return None
        except AudioDecodeError as error:
            return replace(stamped, error=f"cannot decode: {error}")
        except GenreClientError as error:
            failure = error
        finally:
            if throttle is not None:
                throttle.release(refused=failure is not None and failure.code == OVERLOADED)
        if failure is None:
            genre, probability = final.track[0] if final.track else ("", None)
            return replace(
                stamped,
                genre=genre,
                probability=probability,
                abstention=final.track_abstention,
                model=final.model or plan.model,
                version=final.version or plan.version,
                seconds=final.audio_seconds,
                title=title,
            )
        if stop.is_set():
            return None
        if attempt < allowed.get(failure.code, 1):
            delay = min(plan.backoff_seconds * 2 ** (attempt - 1), plan.max_backoff_seconds)
            if stop.wait(delay):  # a Ctrl-C ends the wait at once
                return None
            continue
        if failure.code in FATAL:
            raise failure
        reason = f"server: {failure.code.name}: {failure.details}"
        return replace(stamped if failure.code in FILE_FAULTS else unstamped, error=reason)
    raise AssertionError("unreachable: the last attempt returns or raises")
