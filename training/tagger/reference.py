"""Reference outputs of the original musicnn TensorFlow graph, which prove our torch port.

``python -m training.tagger.reference --tf-python .venv-tf/bin/python`` (``make
tagger-reference``) cuts the windows below, turns them into tagger patches with our front-end
(``modelcore.frontend.MusicnnFrontEnd``), runs the original graph on exactly those float32
patches in the conversion-only TensorFlow environment (``training/tagger/original_graph.py``)
and writes what it answered to ``tests/data/musicnn_reference.npz``, with a fingerprint of each
input patch. ``tests/unit/test_musicnn_port.py`` rebuilds the same patches and compares.

Windows: three synthetic clips (made here, so the test runs anywhere) and three real GTZAN
valid-list excerpts (read from the shared data; their test skips without it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from modelcore.frontend import MusicnnFrontEnd, MusicnnFrontEndConfig
from training.audio.data import decode_file
from training.tagger.wheel import DEFAULT_WHEEL, read_tagger

FloatArray = npt.NDArray[np.float32]
INPUT_RATE = 22050  # the CNN-LSTM's rate: the serving path resamples from it
WINDOW_SAMPLES = 3 * INPUT_RATE
REFERENCE_FILE = Path("tests/data/musicnn_reference.npz")
SYNTHETIC = ("chord", "drums", "loud_bass")
# (track of the valid list, offset in seconds): one window each
GTZAN = (("classical.00000", 0.0), ("jazz.00006", 10.0), ("rock.00038", 20.0))
OUTPUTS = ("probabilities", "penultimate", "mean_pool", "max_pool")


def synthetic_window(kind: str) -> FloatArray:
    """A deterministic 3-s window at 22,050 Hz; ``loud_bass`` drives low mel bins past 6.55,
    where the original front-end's float16 arithmetic overflows."""
    rng = np.random.default_rng(SYNTHETIC.index(kind))
    t = np.arange(WINDOW_SAMPLES, dtype=np.float64) / INPUT_RATE
    if kind == "chord":
        signal = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0))
    elif kind == "drums":
        hits = (np.mod(t, 0.5) < 0.04) * np.exp(-np.mod(t, 0.5) * 60.0)
        signal = 0.8 * hits * rng.standard_normal(t.shape) + 0.3 * np.sin(2 * np.pi * 55.0 * t)
    elif kind == "loud_bass":
        signal = 0.98 * np.tanh(3.0 * np.sin(2 * np.pi * 65.0 * t))
    else:
        raise ValueError(f"unknown synthetic window {kind!r}; known: {SYNTHETIC}")
    noise = 0.005 * rng.standard_normal(t.shape)
    return np.clip(signal + noise, -1.0, 1.0).astype(np.float32)


def gtzan_window(audio_root: Path, track: str, offset_seconds: float) -> FloatArray:
    genre = track.split(".")[0]
    samples, rate = decode_file(audio_root / genre / f"{track}.ogg")
    if rate != INPUT_RATE:
        raise ValueError(f"{track}: {rate} Hz, expected {INPUT_RATE}")
    start = round(offset_seconds * INPUT_RATE)
    window: FloatArray = samples[start : start + WINDOW_SAMPLES]
    return window


def patches_of(windows: FloatArray) -> FloatArray:
    """(N, 66150) windows at 22,050 Hz -> (N, 187, 96) tagger patches, as served."""
    frontend = MusicnnFrontEnd(MusicnnFrontEndConfig(), INPUT_RATE)
    with torch.inference_mode():
        patches: FloatArray = frontend(torch.from_numpy(windows)).numpy()
    return patches


def fingerprint(patches: FloatArray) -> FloatArray:
    """Per patch: mean, std and max, to tell a changed front-end from a changed network."""
    flat = patches.reshape(len(patches), -1).astype(np.float64)
    return np.stack([flat.mean(1), flat.std(1), flat.max(1)], axis=1).astype(np.float32)


def run_original(tf_python: Path, wheel: Path, patches: FloatArray) -> dict[str, FloatArray]:
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        read_tagger(wheel, "MSD_musicnn", directory)  # checks the wheel, unpacks its checkpoint
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith("musicnn/") and name.endswith(".py"):
                    archive.extract(name, directory)
        np.savez(directory / "patches.npz", patches=patches)
        script = Path(__file__).with_name("original_graph.py")
        command = [str(tf_python), str(script), str(directory), "MSD_musicnn"]
        subprocess.run([*command, str(directory / "patches.npz"), str(directory / "out.npz")],
                       check=True)  # fmt: skip
        with np.load(directory / "out.npz") as outputs:
            return {name: outputs[name].astype(np.float32) for name in OUTPUTS}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tf-python", type=Path, required=True, help="python with tensorflow")
    parser.add_argument("--wheel", type=Path, default=DEFAULT_WHEEL)
    parser.add_argument("--audio", type=Path, default=Path("../shared/data/gtzan/audio"))
    parser.add_argument("--out", type=Path, default=REFERENCE_FILE)
    arguments = parser.parse_args(argv)
    cases = [f"synthetic:{kind}" for kind in SYNTHETIC]
    windows = [synthetic_window(kind) for kind in SYNTHETIC]
    for track, offset in GTZAN:
        cases.append(f"gtzan:{track}@{offset:g}")
        windows.append(gtzan_window(arguments.audio, track, offset))
    patches = patches_of(np.stack(windows))
    outputs = run_original(arguments.tf_python, arguments.wheel, patches)
    tf_version = subprocess.run(
        [str(arguments.tf_python), "-c", "import tensorflow as tf; print(tf.__version__)"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    about = {
        "command": "python -m training.tagger.reference --tf-python .venv-tf/bin/python",
        "original": f"musicnn 0.1.0 MSD_musicnn graph, TensorFlow {tf_version} (CPU)",
        "cases": cases,
    }
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {
        "cases": np.array(cases),
        "input_fingerprint": fingerprint(patches),
        "about": np.array(json.dumps(about)),
        **outputs,
    }
    np.savez_compressed(arguments.out, **arrays)
    print(f"wrote {arguments.out}: {len(cases)} windows, {about['original']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
