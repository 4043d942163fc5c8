"""Decodes audio files for streaming, through PyAV (FFmpeg's demuxers and decoders in a wheel).

A music library holds MP3, AAC and ALAC in MP4 (``.m4a``), Opus and Vorbis in Ogg or WebM, WMA,
FLAC, WAV, AIFF and more; libsndfile reads only some of them, FFmpeg reads them all. ``av`` is
imported only when a file is opened, so ``import client`` never loads FFmpeg (another service
installs the client for its calls, not for decoding).

FFmpeg's log stays off (PyAV's default, asserted again when a file is opened): a decoder's
complaint about a damaged file reaches the caller as :class:`AudioDecodeError`'s message, which
names the file's codec, where the damage is and FFmpeg's reason, and is never written raw to the
terminal as a C library's stderr would be.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from av.container import InputContainer

FloatArray = npt.NDArray[np.float32]
MAX_CHANNELS = 2
"""The contract takes mono or stereo; wider layouts are mixed down to mono here."""
INSTALL_HINT = "decoding audio files needs PyAV: pip install 'genre-serve[client]'"


class AudioDecodeError(ValueError):
    """The file cannot be decoded; the message says why (FFmpeg's reason, and where)."""


@dataclass(frozen=True)
class DecodedAudio:
    """Interleaved little-endian float32 PCM (``f32le``) and what the stream config needs."""

    pcm: bytes
    sample_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (4 * self.channels * self.sample_rate)


def _av() -> Any:
    try:
        import av
        import av.logging
    except ImportError as error:
        raise AudioDecodeError(INSTALL_HINT) from error
    av.logging.set_level(None)  # FFmpeg's own log off: no raw stderr from a damaged file
    return av


def _reason(error: Exception) -> str:
    """FFmpeg's message without PyAV's ``[Errno N]`` and call-site decorations."""
    reason = getattr(error, "strerror", None) or str(error)
    return str(reason).rstrip(". ")


class AudioFile:
    """An audio file opened for decoding: its first audio stream's rate, the channels sent
    (more than :data:`MAX_CHANNELS` are mixed to mono), its title, and its samples in blocks.

    Raises :class:`AudioDecodeError` when the file has no audio FFmpeg can decode.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        av = _av()
        try:
            self._container: InputContainer = av.open(str(path), "r")
        except av.FFmpegError as error:
            raise AudioDecodeError(f"{_reason(error)} (opening the file)") from error
        except OSError as error:  # raised by Python before FFmpeg sees the file
            raise AudioDecodeError(error.strerror or str(error)) from error
        streams = self._container.streams.audio
        if not streams:
            self._container.close()
            raise AudioDecodeError("no audio stream in the file")
        self._stream = streams[0]
        context = self._stream.codec_context
        self.codec = context.name
        self.sample_rate = int(context.sample_rate)
        self.file_channels = int(context.channels)
        if self.sample_rate <= 0 or self.file_channels <= 0:
            self._container.close()
            raise AudioDecodeError(f"{self.codec} stream without a sample rate or channels")
        self.channels = 1 if self.file_channels > MAX_CHANNELS else self.file_channels

    def __enter__(self) -> AudioFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    @property
    def tags(self) -> dict[str, str]:
        """The file's and the stream's tags (Vorbis comments live on the stream), lower-case
        keys."""
        merged = {**self._stream.metadata, **self._container.metadata}
        return {str(key).lower(): str(value) for key, value in merged.items()}

    def title(self) -> str:
        """``Artist - Title`` from the tags, else the file name without its extension."""
        tags = self.tags
        title = " ".join(tags.get("title", "").split())
        artist = " ".join(tags.get("artist", "").split())
        if title and artist:
            return f"{artist} - {title}"
        return title or self.path.stem

    def frames(self) -> Iterator[FloatArray]:
        """Decoded frames as float32 ``(samples, channels)`` at the file's rate, channels as
        sent. Raises :class:`AudioDecodeError` naming the codec and the time of a damaged
        frame."""
        av = _av()
        resampler = av.AudioResampler(format="flt", rate=self.sample_rate)
        decoded = 0
        try:
            for frame in itertools.chain(self._container.decode(self._stream), [None]):
                for converted in resampler.resample(frame):
                    channels = len(converted.layout.channels)
                    block = converted.to_ndarray().reshape(-1, channels)
                    decoded += len(block)
                    yield self._sent(block)
        except av.FFmpegError as error:
            at = decoded / self.sample_rate
            raise AudioDecodeError(f"{self.codec} at {at:.1f} s: {_reason(error)}") from error

    def _sent(self, block: FloatArray) -> FloatArray:
        if block.shape[1] > MAX_CHANNELS:
            mixed: FloatArray = block.mean(axis=1, keepdims=True, dtype=np.float32)
            return mixed
        return np.asarray(block, dtype=np.float32)

    def blocks(self, frames: int) -> Iterator[FloatArray]:
        """``(frames, channels)`` blocks in order; the last may be shorter."""
        pending: list[FloatArray] = []
        held = 0
        for block in self.frames():
            pending.append(block)
            held += len(block)
            while held >= frames:
                joined = np.concatenate(pending)
                yield joined[:frames]
                rest = joined[frames:]
                pending, held = ([rest] if len(rest) else []), len(rest)
        if held:
            yield np.concatenate(pending)


def decode_file(path: str | Path) -> DecodedAudio:
    """The whole file as interleaved float32 PCM at its own rate.

    Raises :class:`AudioDecodeError` when the file cannot be decoded.
    """
    with AudioFile(path) as audio:
        parts = list(audio.frames())
        channels = audio.channels
        rate = audio.sample_rate
    frames = np.concatenate(parts) if parts else np.zeros((0, channels), dtype=np.float32)
    if not len(frames):
        raise AudioDecodeError("no audio samples in the file")
    pcm = np.ascontiguousarray(frames, dtype="<f4").tobytes()
    return DecodedAudio(pcm=pcm, sample_rate=rate, channels=channels)
