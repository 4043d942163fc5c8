"""Speech synthesizers and the voices they read in: espeak-ng and flite, in disjoint voice sets
per split, over a wide range of pitch, formants and speaking rate.

v4's detector heard espeak-ng alone, at middling pitch and rate, and a female voice of another
synthesizer (flite's ``slt``) came out music after a lossy round trip (issue #26). So the voices
get wider along the three axes a speaker differs on:

- pitch: espeak-ng's ``-p`` (0-99) and flite's ``int_f0_target_mean`` (80-260 Hz) move the
  voice's pitch and leave its formants;
- formants: resampling by a factor ``r`` (0.82-1.25) plays the voice as a tape at another speed,
  moving formants and pitch together by ``r`` (a male voice's formants sped up 1.2 sit where a
  female voice's do);
- speaking rate: espeak-ng's ``-s`` (90-300 words a minute) and flite's ``duration_stretch``
  (0.65-1.6), and the tape speed above.

A voice is ``"<espeak-ng voice>+<variant>"`` or ``"flite:<voice>"``. flite's ``slt`` (the only
female flite voice, the reported failure) is in the test set only, so the study hears it new.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from modelcore.frontend import resample

FloatArray = npt.NDArray[np.float32]
SAMPLE_RATE = 22050  # espeak-ng's own rate, and the audio models' contract rate
ESPEAK = "espeak-ng"
FLITE = "flite"
FLITE_PREFIX = "flite:"

# Voice sets by split: no voice is in two sets. espeak-ng: language plus variant.
VOICES: dict[str, tuple[str, ...]] = {
    "train": (
        "en-us+m1", "en-us+f2", "en-gb+m3", "en-gb-x-rp+f1", "de+m2", "fr-fr+f3", "es+m4",
        "it+f4", "nl+m1", "pt+f1", "hi+m2", "ja+f2", "en-us+f5", "cmn+m6",
        "flite:kal", "flite:kal16", "flite:awb",
    ),
    "valid": ("en-us+m3", "en-gb-scotland+f2", "de+f3", "fr-fr+m2", "es+f1", "pl+m1", "flite:rms"),
    "test": ("en-us+f4", "en-029+m2", "it+m3", "sv+f2", "ru+m4", "en-gb+f3", "flite:slt"),
}  # fmt: skip
RATE_RANGE = (90, 300)  # espeak-ng words a minute
PITCH_RANGE = (0, 99)  # espeak-ng -p
FLITE_F0_RANGE = (80.0, 260.0)  # Hz, flite's int_f0_target_mean
FLITE_STRETCH_RANGE = (0.65, 1.6)  # flite's duration_stretch: > 1 is slower
FORMANT_RANGE = (0.82, 1.25)  # tape-speed factor
TAPE_STEP = 350  # Hz: 22,050 / 350 = 63


@dataclass(frozen=True)
class Delivery:
    """How a voice is made to speak: ``speed`` in espeak-ng words a minute (flite: the inverse
    of its duration stretch, 175 wpm being 1), ``pitch`` 0-99 (flite: mapped onto its f0 range)
    and the tape ``formant`` factor."""

    speed: int
    pitch: int
    formant: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Delivery:
        return cls(
            speed=int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1)),
            pitch=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
            formant=float(np.exp(rng.uniform(*np.log(FORMANT_RANGE)))),
        )

    @property
    def description(self) -> str:
        return f"{self.speed} wpm pitch {self.pitch} formants x{self.formant:.2f}"


def espeak_available() -> bool:
    return shutil.which(ESPEAK) is not None


def flite_available() -> bool:
    return shutil.which(FLITE) is not None


def synthesizer(voice: str) -> str:
    """The command a voice needs (``espeak-ng`` or ``flite``)."""
    return FLITE if voice.startswith(FLITE_PREFIX) else ESPEAK


def missing_synthesizers(voices: tuple[str, ...]) -> list[str]:
    """The synthesizers ``voices`` need that are not on PATH."""
    return sorted(
        {synthesizer(v) for v in voices} - {c for c in (ESPEAK, FLITE) if shutil.which(c)}
    )


def _read_wav(data: bytes) -> tuple[FloatArray, int]:
    import soundfile  # training and tests decode files; the server never does

    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return np.asarray(samples, dtype=np.float32), int(rate)


def speak(text: str, voice: str, delivery: Delivery = Delivery(160, 50, 1.0)) -> FloatArray:
    """``text`` read by ``voice`` with ``delivery``, as float32 at ``SAMPLE_RATE``."""
    if voice.startswith(FLITE_PREFIX):
        low, high = FLITE_F0_RANGE
        f0 = low + (high - low) * delivery.pitch / PITCH_RANGE[1]
        stretch = min(max(175 / delivery.speed, FLITE_STRETCH_RANGE[0]), FLITE_STRETCH_RANGE[1])
        command = [
            FLITE, "-voice", voice.removeprefix(FLITE_PREFIX),
            "--setf", f"int_f0_target_mean={f0:.0f}", "--setf", f"duration_stretch={stretch:.3f}",
            "-o", "/dev/stdout", "-t", text,
        ]  # fmt: skip
    else:
        command = [
            ESPEAK, "-v", voice, "-s", str(delivery.speed), "-p", str(delivery.pitch), "--stdout",
            text,
        ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, check=True, timeout=60)
    samples, rate = _read_wav(result.stdout)
    # A tape played r times faster: formants, pitch and tempo all up by r. The rate it is read
    # at is a multiple of TAPE_STEP, so the resampler's kernel stays small (63 phases).
    tape = max(TAPE_STEP, round(rate * delivery.formant / TAPE_STEP) * TAPE_STEP)
    return resample(samples, tape, SAMPLE_RATE)
