"""Loaders for the Kaggle GTZAN feature tables (57 librosa features per 30-s or 3-s excerpt).

Both tables share columns (``filename``, ``length``, 57 features, ``label``); they differ in the
file name: ``blues.00000.wav`` for a 30-s excerpt, ``blues.00000.3.wav`` for its fourth 3-s
segment. Every row keeps its track id (``blues.00000``) so a split can keep the ten segments of
one track together; GTZAN's artist information lives only in the fault-filtered split lists
(see ``training.splits``), so the grouping id here is the track.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from training.features.tabular import (
    DataFormatError,
    LoadReport,
    RowChecker,
    TabularDataset,
    read_table,
)

GTZAN_GENRES = (
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
)
_SPECTRAL = (
    "chroma_stft",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
    "harmony",
    "perceptr",
)
GTZAN_FEATURES: tuple[str, ...] = (
    *(f"{name}_{stat}" for name in _SPECTRAL for stat in ("mean", "var")),
    "tempo",
    *(f"mfcc{index}_{stat}" for index in range(1, 21) for stat in ("mean", "var")),
)
_FILENAME = re.compile(
    r"^(?P<genre>[a-z]+)\.(?P<number>\d{5})(?:\.(?P<segment>\d+))?\.(?:wav|au|ogg)$"
)
DEFAULT_FILES = {"gtzan30": "features_30_sec.csv", "gtzan3": "features_3_sec.csv"}


def resolve_gtzan_csv(data: Path, variant: str) -> Path:
    """``--data`` may be the CSV itself, a ``gtzan`` directory, or the shared data directory."""
    if data.is_file():
        return data
    file_name = DEFAULT_FILES[variant]
    for candidate in (data / file_name, data / "gtzan" / file_name):
        if candidate.is_file():
            return candidate
    raise DataFormatError(f"{data}: neither a CSV file nor a directory holding {file_name}")


def load_gtzan_features(path: Path, segments: bool, drop_bad_rows: bool = False) -> TabularDataset:
    """Reads a GTZAN feature table; ``segments`` selects the 3-s layout (``x.00000.3.wav``)."""
    frame = read_table(path, ("filename", *GTZAN_FEATURES, "label"), ignorable=("length",))
    checker = RowChecker(path, frame, drop_bad_rows)
    columns = [checker.numbers(name) for name in GTZAN_FEATURES]
    labels_text = checker.text("label")
    known = np.isin(labels_text, GTZAN_GENRES)
    checker.flag(~known, "label", f"unknown label (expected one of {', '.join(GTZAN_GENRES)})")
    filenames = checker.text("filename")
    matches = [_FILENAME.match(name) for name in filenames]
    shape_ok = np.array(
        [m is not None and (m["segment"] is not None) == segments for m in matches], dtype=bool
    )
    layout = "genre.NNNNN.S.wav" if segments else "genre.NNNNN.wav"
    checker.flag(~shape_ok, "filename", f"file name not of the form {layout}")
    track_ids = np.array(
        [f"{m['genre']}.{m['number']}" if m is not None else "" for m in matches], dtype=str
    )
    file_genres = np.array([m["genre"] if m is not None else "" for m in matches], dtype=str)
    checker.flag(
        shape_ok & known & (file_genres != labels_text), "label", "disagrees with filename"
    )
    repeated = frame["filename"].str.strip().duplicated(keep="first").to_numpy()
    checker.flag(repeated, "filename", "repeated file name")

    keep = checker.keep
    label_index = {name: position for position, name in enumerate(GTZAN_GENRES)}
    labels = np.array([label_index.get(name, -1) for name in labels_text], dtype=np.int64)
    features = np.stack(columns, axis=1).astype(np.float32)
    report = LoadReport(
        rows_read=len(frame), rows_kept=int(keep.sum()), bad_rows_dropped=dict(checker.reasons)
    )
    return TabularDataset(
        name="gtzan3" if segments else "gtzan30",
        features=features[keep],
        feature_names=GTZAN_FEATURES,
        labels=labels[keep],
        label_names=GTZAN_GENRES,
        track_ids=track_ids[keep],
        groups=track_ids[keep],
        imputable=(),
        files=(path,),
        report=report,
    )
