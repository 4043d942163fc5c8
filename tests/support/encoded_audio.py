"""Audio files in the formats a music library holds, made by the tests themselves with PyAV
(FFmpeg's encoders in a wheel), so no test depends on files from elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Format:
    """One way a library's file is made: ``codec`` (FFmpeg encoder) in ``container``, at
    ``sample_rate`` (0: the source's), with ``bit_rate`` where the codec is lossy."""

    suffix: str
    codec: str
    container: str
    sample_rate: int = 0
    bit_rate: int = 0
    layout: str = "stereo"

    @property
    def name(self) -> str:
        return f"{self.suffix.lstrip('.')}-{self.codec}"


FORMATS = (
    Format(".mp3", "libmp3lame", "mp3", 44100, 192000),
    Format(".m4a", "aac", "ipod", 44100, 160000),
    Format(".m4a", "alac", "ipod", 44100),
    Format(".opus", "libopus", "ogg", 48000, 96000),
    Format(".webm", "libopus", "webm", 48000, 96000),
    Format(".wma", "wmav2", "asf", 44100, 128000),
    Format(".ogg", "vorbis", "ogg", 44100, 128000),
    Format(".flac", "flac", "flac"),
    Format(".wav", "pcm_s16le", "wav"),
    Format(".aiff", "pcm_s16be", "aiff"),
)
"""One of each: MP3, AAC and ALAC in .m4a, Opus in Ogg and in WebM, WMA, Vorbis, FLAC, WAV and
AIFF. FFmpeg's own Vorbis encoder (the wheel has no libvorbis) takes only stereo and needs the
``strict`` option: a decoder test needs a valid file, not a good encoder."""


def write_encoded(
    path: Path,
    samples: npt.NDArray[np.float32],
    sample_rate: int,
    fmt: Format,
    tags: dict[str, str] | None = None,
) -> Path:
    """Mono float32 ``samples`` at ``sample_rate`` written to ``path`` in ``fmt``."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    rate = fmt.sample_rate or sample_rate
    with av.open(str(path), "w", format=fmt.container) as output:
        for key, value in (tags or {}).items():
            output.metadata[key] = value
        options = {"strict": "experimental"} if fmt.codec == "vorbis" else {}
        stream = output.add_stream(fmt.codec, rate=rate, layout=fmt.layout, options=options)
        assert isinstance(stream, av.AudioStream)
        if fmt.bit_rate:
            stream.bit_rate = fmt.bit_rate
        channels = 2 if fmt.layout == "stereo" else 1
        planar = np.repeat(samples[np.newaxis, :].astype(np.float32), channels, axis=0)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=fmt.layout)
        frame.sample_rate = sample_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            output.mux(packet)
    return path


def damaged_mp3(path: Path, samples: npt.NDArray[np.float32], sample_rate: int) -> Path:
    """An MP3 whose frames a third of the way in are overwritten with zeros, as a bad sector or
    a broken download leaves them: FFmpeg's decoder refuses it at that point."""
    write_encoded(path, samples, sample_rate, FORMATS[0])
    data = bytearray(path.read_bytes())
    start = len(data) // 3
    data[start : start + 1024] = bytes(1024)
    path.write_bytes(bytes(data))
    return path
