"""Audio datasets: ``<label>/<file>`` folders (GTZAN's ``<genre>/<genre>.000NN.*`` among them),
decoded once into memory, cut into windows, and split by track.

A track is the unit of every split: its windows go wholly to one side, so a model is never
scored on a slice of a recording it trained on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm.auto import tqdm

from modelcore.frontend import FloatArray, downmix, resample
from training.splits import Split, group_split, read_split_lists, split_by_lists

IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".au")


def decode_file(path: Path) -> tuple[FloatArray, int]:
    """Any file soundfile reads (wav, flac, ogg, mp3) -> mono float32 samples and their rate."""
    import soundfile  # only training and the client decode files; the server gets raw PCM

    data, sample_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono: FloatArray = downmix(data)
    return mono, int(sample_rate)


@dataclass(frozen=True)
class AudioDataset:
    """Tracks decoded to mono float32 at ``sample_rate``, with their labels.

    ``track_ids`` are file stems (``blues.00029``), unique across the dataset.
    """

    root: Path
    files: tuple[Path, ...]
    track_ids: StrArray
    labels: IntArray
    label_names: tuple[str, ...]
    waveforms: tuple[FloatArray, ...]
    sample_rate: int

    @property
    def seconds(self) -> float:
        return sum(len(samples) for samples in self.waveforms) / self.sample_rate


def resolve_audio_root(data: Path) -> Path:
    """``data`` itself when it holds label folders with audio, else ``data/gtzan/audio`` or
    ``data/audio`` (so ``--data ../shared/data`` works)."""
    for candidate in (data, data / "gtzan" / "audio", data / "audio"):
        if candidate.is_dir() and any(_audio_files(candidate)):
            return candidate
    raise ValueError(f"{data}: no <label>/<file> audio ({', '.join(AUDIO_EXTENSIONS)}) found")


def _audio_files(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.glob("*/*")
        if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS and path.parent.is_dir()
    )


def discover(root: Path) -> tuple[list[Path], list[str]]:
    """Audio files under ``root/<label>/`` and their labels (folder names), sorted."""
    files = _audio_files(root)
    if not files:
        raise ValueError(f"{root}: no <label>/<file> audio found")
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise ValueError(f"track id {path.stem!r} repeats: {stems[path.stem]} and {path}")
        stems[path.stem] = path
    return files, [path.parent.name for path in files]


def load_audio_dataset(
    data: Path, sample_rate: int, labels: Sequence[str] | None = None, progress: bool = True
) -> AudioDataset:
    """Decodes every file once (down-mixed, resampled to ``sample_rate``); ``labels`` fixes
    the class order (default: sorted folder names)."""
    root = resolve_audio_root(data)
    files, file_labels = discover(root)
    label_names = tuple(labels) if labels else tuple(sorted(set(file_labels)))
    unknown = sorted(set(file_labels) - set(label_names))
    if unknown:
        raise ValueError(f"{root}: folders {unknown} are not among the labels {label_names}")
    if len(label_names) < 2:
        raise ValueError(f"{root}: need at least two label folders, found {label_names}")
    waveforms = []
    for path in tqdm(files, desc="decoding", disable=not progress, leave=False):
        try:
            decoded, rate = decode_file(path)
            samples = resample(decoded, rate, sample_rate)
        except Exception as error:  # soundfile raises LibsndfileError, RuntimeError, OSError
            raise ValueError(f"{path}: cannot decode ({error})") from error
        if len(samples) == 0 or not np.isfinite(samples).all():
            raise ValueError(f"{path}: empty or non-finite audio")
        waveforms.append(samples)
    return AudioDataset(
        root=root,
        files=tuple(files),
        track_ids=np.array([path.stem for path in files]),
        labels=np.array([label_names.index(name) for name in file_labels], dtype=np.int64),
        label_names=label_names,
        waveforms=tuple(waveforms),
        sample_rate=sample_rate,
    )


def fingerprint(root: Path, files: Sequence[Path]) -> str:
    """sha256 over relative paths and contents of the audio (and split lists) trained from."""
    digest = hashlib.sha256()
    for path in sorted(files):
        name = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        digest.update(str(name).encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode("ascii") + b"\n")
    return digest.hexdigest()


def window_offsets(num_samples: int, window_samples: int, hop_samples: int) -> IntArray:
    """Start samples of the windows covering a track: every ``hop_samples`` from 0, plus one
    window flush with the end when the hops leave a tail; one window (padded) when the track
    is shorter than a window."""
    if window_samples <= 0 or hop_samples <= 0:
        raise ValueError("window_samples and hop_samples must be positive")
    last = num_samples - window_samples
    if last <= 0:
        return np.zeros(1, dtype=np.int64)
    offsets = np.arange(0, last + 1, hop_samples, dtype=np.int64)
    if offsets[-1] != last:
        offsets = np.append(offsets, np.int64(last))
    return offsets


def cut_windows(samples: FloatArray, window_samples: int, hop_samples: int) -> FloatArray:
    """(samples,) -> (windows, window_samples), zero-padded at the end if the track is short."""
    offsets = window_offsets(len(samples), window_samples, hop_samples)
    if len(samples) < window_samples:
        samples = np.pad(samples, (0, window_samples - len(samples)))
    windows: FloatArray = np.stack([samples[o : o + window_samples] for o in offsets])
    return windows


def split_tracks(
    dataset: AudioDataset,
    splits_dir: Path | None,
    valid_fraction: float,
    test_fraction: float,
    seed: int,
) -> Split:
    """Indices into the dataset's tracks: the fault-filtered lists in ``splits_dir`` (default
    ``<root>/../splits``, else ``<root>/splits``) when present, else a grouped shuffle by
    track. Tracks on no list are left out (and counted)."""
    candidates = (
        [splits_dir] if splits_dir else [dataset.root.parent / "splits", dataset.root / "splits"]
    )
    for directory in candidates:
        lists = read_split_lists(directory) if directory is not None else None
        if lists is not None and directory is not None:
            sources = tuple(sorted(directory.glob("*_filtered.txt")))
            split = replace(split_by_lists(dataset.track_ids, lists), sources=sources)
            break
    else:
        if splits_dir is not None:
            raise ValueError(f"{splits_dir}: no train_filtered.txt/valid_filtered.txt there")
        split = group_split(dataset.track_ids, valid_fraction, test_fraction, seed)
    split.assert_grouped(dataset.track_ids)
    return split
