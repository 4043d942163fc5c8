"""Lossy codec round trips: what a caller's compressed file does to a clip before it is sent.

Real callers send decoded MP3, AAC, Opus and Vorbis, not the clean waveforms that were made
here, and a codec's artefacts (band limits, spectral holes, pre-echo, frame smearing) moved
synthetic speech across the music detector's boundary (issue #26). So the detector's music and
non-music, in training and in every study, go through the same round trips a library's files
have been through: encoded at a common bitrate, decoded, and resampled to the model's rate with
the server's own resampler (``modelcore.frontend.resample``), as a stream of the decoded file
would be.

MP3 (LAME), AAC (FFmpeg's encoder) and Opus (libopus) are encoded with PyAV. Vorbis goes through
libvorbis by way of libsndfile (``soundfile``): the PyAV wheel carries only FFmpeg's own
experimental Vorbis encoder, which no .ogg file in a library was made with, while libvorbis is
what ``oggenc`` (and so the shared GTZAN audio itself) used.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from modelcore.frontend import resample

FloatArray = npt.NDArray[np.float32]
PYAV_CODECS = {"mp3": ("libmp3lame", "mp3"), "aac": ("aac", "mp4"), "opus": ("libopus", "ogg")}
"""Codec name -> (PyAV encoder, container)."""
AAC_PRIMING = 1024
"""Samples FFmpeg's AAC encoder puts before the audio, at the encoding rate. MP3 (LAME's gapless
header) and Opus (pre-skip) say how many to drop and the decoder drops them; the MP4 written
here has no edit list saying so, so :func:`decode` drops them for AAC itself."""
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
VORBIS_QUALITY = {64000: 0.1, 96000: 0.3, 128000: 0.4, 160000: 0.5, 192000: 0.6}
"""Nominal bitrate -> libvorbis quality (``oggenc -q`` divided by 10): libvorbis is a
quality-driven VBR encoder, and these are the qualities whose stereo 44.1 kHz rate is about the
nominal one (mono at lower rates spends less; :func:`round_trip` reports what was spent)."""


@dataclass(frozen=True)
class Codec:
    """One lossy setting: ``name`` (mp3, aac, opus, vorbis), nominal ``bitrate`` in bit/s, and
    the ``sample_rate`` it encodes at (0: the clip's own rate where the codec takes it)."""

    name: str
    bitrate: int
    sample_rate: int = 0

    def __post_init__(self) -> None:
        if self.name not in (*PYAV_CODECS, "vorbis"):
            raise ValueError(f"unknown codec {self.name!r}; known: mp3, aac, opus, vorbis")
        if self.bitrate <= 0:
            raise ValueError(f"bitrate must be > 0, got {self.bitrate}")
        if self.name == "vorbis" and self.bitrate not in VORBIS_QUALITY:
            raise ValueError(f"vorbis bitrates: {sorted(VORBIS_QUALITY)}, got {self.bitrate}")

    @property
    def label(self) -> str:
        """``mp3 128k at 44.1 kHz``; Vorbis by its quality (``vorbis q4``), which is what sets
        its rate."""
        rate = f" at {self.sample_rate / 1000:g} kHz" if self.sample_rate else ""
        if self.name == "vorbis":
            return f"vorbis q{10 * VORBIS_QUALITY[self.bitrate]:g}{rate}"
        return f"{self.name} {self.bitrate // 1000}k{rate}"

    def encoding_rate(self, clip_rate: int) -> int:
        """The rate the encoder runs at for a clip at ``clip_rate``: Opus only takes its five."""
        rate = self.sample_rate or clip_rate
        if self.name == "opus" and rate not in OPUS_RATES:
            return min(r for r in OPUS_RATES if r >= min(rate, 48000))
        return rate


STUDY_CODECS = (
    Codec("mp3", 128000, 44100),
    Codec("aac", 128000, 44100),
    Codec("opus", 64000, 48000),
    Codec("vorbis", 128000, 44100),
    Codec("mp3", 64000),
    Codec("aac", 64000),
    Codec("opus", 32000),
    Codec("vorbis", 64000),
)
"""What the study and the published figures measure: each codec at a common bitrate for music
at 44.1 or 48 kHz, and each at a low one at the clip's own rate (speech files are often coded
that way: the reported failure was 16 kHz speech)."""
TRAINING_CODECS = tuple(
    Codec(name, bitrate, rate)
    for name, bitrates in {
        "mp3": (48000, 96000, 160000),
        "aac": (48000, 96000, 160000),
        "opus": (24000, 48000, 96000),
        "vorbis": (96000, 160000),
    }.items()
    for bitrate in bitrates
    for rate in (0, 48000 if name == "opus" else 44100)
)
"""Settings a training clip is drawn from: bitrates around, not at, the study's, at the clip's
own rate and at a music rate."""


def encode(samples: FloatArray, sample_rate: int, codec: Codec) -> bytes:
    """Mono float32 ``samples`` at ``sample_rate`` -> the bytes of a file in ``codec``."""
    rate = codec.encoding_rate(sample_rate)
    if rate != sample_rate:
        samples = resample(samples, sample_rate, rate)
    clipped = np.clip(samples, -1.0, 1.0).astype(np.float32)
    if codec.name == "vorbis":
        return _encode_vorbis(clipped, rate, VORBIS_QUALITY[codec.bitrate])
    import av

    encoder, container = PYAV_CODECS[codec.name]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(encoder, rate=rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        stream.bit_rate = codec.bitrate
        frame = av.AudioFrame.from_ndarray(clipped[np.newaxis, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            output.mux(packet)
    return buffer.getvalue()


def _encode_vorbis(samples: FloatArray, rate: int, quality: float) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    # libsndfile maps compression_level c to libvorbis quality 1 - c
    with soundfile.SoundFile(
        buffer, "w", rate, 1, format="OGG", subtype="VORBIS", compression_level=1 - quality
    ) as handle:
        handle.write(samples)
    return buffer.getvalue()


def decode(data: bytes, skip: int = 0) -> tuple[FloatArray, int]:
    """A file's bytes -> mono float32 samples at the file's own rate (FFmpeg's decoders), the
    first ``skip`` left out."""
    import av

    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = [
            converted.to_ndarray()[0]
            for frame in [*container.decode(stream), None]
            for converted in resampler.resample(frame)
        ]
    decoded: FloatArray = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, "f4")
    return decoded[skip:], int(rate)


@dataclass(frozen=True)
class RoundTrip:
    """A clip after ``codec``: ``samples`` at the clip's rate, and the bit/s the file spent."""

    samples: FloatArray
    codec: Codec
    bits_per_second: float


def round_trip(samples: FloatArray, sample_rate: int, codec: Codec) -> RoundTrip:
    """``samples`` encoded with ``codec``, decoded, and brought back to ``sample_rate`` by the
    server's resampler; as long as the clip (the codec's padding trimmed, a short tail padded)."""
    data = encode(samples, sample_rate, codec)
    decoded, rate = decode(data, AAC_PRIMING if codec.name == "aac" else 0)
    back = resample(decoded, rate, sample_rate)
    length = len(samples)
    fitted = np.zeros(length, dtype=np.float32)
    fitted[: min(length, len(back))] = back[:length]
    seconds = max(length / sample_rate, 1e-9)
    return RoundTrip(fitted, codec, 8 * len(data) / seconds)


def through(
    clips: Sequence[FloatArray],
    sample_rate: int,
    codecs: Sequence[Codec],
    progress: bool = False,
    desc: str = "",
) -> list[FloatArray]:
    """Clip ``i`` after ``codecs[i]``'s round trip."""
    pairs = zip(clips, codecs, strict=True)
    return [
        round_trip(samples, sample_rate, codec).samples
        for samples, codec in tqdm(pairs, total=len(clips), desc=desc, disable=not progress)
    ]


def drawn(
    count: int, rng: np.random.Generator, pool: Sequence[Codec] = TRAINING_CODECS
) -> list[Codec]:
    """``count`` settings drawn from ``pool``, each codec equally often in expectation."""
    return [pool[int(index)] for index in rng.integers(len(pool), size=count)]
