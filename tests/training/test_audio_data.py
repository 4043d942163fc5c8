"""Audio folders: discovery, windowing that covers a track, and track-disjoint splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.synthetic_audio import STYLES, write_clip, write_dataset
from training.audio.data import (
    AudioDataset,
    cut_windows,
    discover,
    load_audio_dataset,
    split_tracks,
    window_offsets,
)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("audio"), per_style=5, seconds=4.0)


def test_windows_cover_a_track_with_the_right_count_and_offsets() -> None:
    # 10 s at 100 Hz, 3-s windows, 1.5-s hop: 0, 150, ..., 600, then one flush with the end.
    assert window_offsets(1000, 300, 150).tolist() == [0, 150, 300, 450, 600, 700]
    assert window_offsets(900, 300, 150).tolist() == [0, 150, 300, 450, 600]
    assert window_offsets(300, 300, 150).tolist() == [0]
    assert window_offsets(120, 300, 150).tolist() == [0]
    samples = np.arange(1000, dtype=np.float32)
    windows = cut_windows(samples, 300, 150)
    assert windows.shape == (6, 300)
    assert windows[-1, -1] == 999
    assert windows[2, 0] == 300
    covered = np.zeros(1000, dtype=bool)
    for offset in window_offsets(1000, 300, 150):
        covered[offset : offset + 300] = True
    assert covered.all()
    short = cut_windows(np.ones(120, dtype=np.float32), 300, 150)
    assert short.shape == (1, 300)
    assert short[0, 119] == 1
    assert short[0, 120] == 0


def test_loads_label_folders_in_any_supported_format(tmp_path: Path) -> None:
    clip = np.zeros(8000, dtype=np.float32)
    write_clip(tmp_path / "rock" / "a.flac", clip, 16000)
    write_clip(tmp_path / "jazz" / "b.wav", clip, 22050)
    (tmp_path / "jazz" / "notes.txt").write_text("not audio")
    files, labels = discover(tmp_path)
    assert [f.name for f in files] == ["b.wav", "a.flac"]
    assert labels == ["jazz", "rock"]
    dataset = load_audio_dataset(tmp_path, 22050, progress=False)
    assert dataset.label_names == ("jazz", "rock")
    assert len(dataset.waveforms[1]) == 11025  # 0.5 s resampled from 16 kHz


def test_refuses_folders_without_audio(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no <label>/<file> audio"):
        load_audio_dataset(tmp_path, 22050, progress=False)


def test_grouped_split_never_puts_a_track_on_two_sides(synthetic: Path) -> None:
    dataset = load_audio_dataset(synthetic, 22050, progress=False)
    assert dataset.label_names == STYLES
    assert len(dataset.track_ids) == 15
    split = split_tracks(dataset, None, 0.2, 0.2, seed=3)
    parts = [set(dataset.track_ids[p].tolist()) for p in (split.train, split.valid, split.test)]
    assert sum(len(p) for p in parts) == 15
    assert not (parts[0] & parts[1])
    assert not (parts[0] & parts[2])
    assert not (parts[1] & parts[2])


def test_split_lists_beside_the_audio_are_followed(synthetic: Path, tmp_path: Path) -> None:
    dataset = load_audio_dataset(synthetic, 22050, progress=False)
    lists = tmp_path / "splits"
    lists.mkdir()
    train = [f"{s}/{s}.{n:05d}.wav" for s in STYLES for n in (0, 1, 2)]
    (lists / "train_filtered.txt").write_text("\n".join(train) + "\n")
    (lists / "valid_filtered.txt").write_text("\n".join(f"{s}/{s}.00003.wav" for s in STYLES))
    split = split_tracks(dataset, lists, 0.2, 0.2, seed=0)
    assert len(split.train) == 9
    assert len(split.valid) == 3
    assert len(split.test) == 0
    assert split.rows_outside == 3
    assert {str(t) for t in dataset.track_ids[split.valid]} == {f"{s}.00003" for s in STYLES}


def test_shared_gtzan_audio_follows_the_filtered_lists(data_dir: Path) -> None:
    root = data_dir / "gtzan" / "audio"
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    files, labels = discover(root)
    names = tuple(sorted(set(labels)))
    dataset = AudioDataset(
        root=root,
        files=tuple(files),
        track_ids=np.array([f.stem for f in files]),
        labels=np.array([names.index(label) for label in labels], dtype=np.int64),
        label_names=names,
        waveforms=tuple(np.zeros(1, dtype=np.float32) for _ in files),
        sample_rate=22050,
    )
    split = split_tracks(dataset, None, 0.2, 0.2, seed=0)
    assert "filtered" in split.method
    assert len(split.test) == 0
    assert len(split.train) + len(split.valid) + split.rows_outside == len(files)
    trained = {names[c] for c in dataset.labels[split.train]}
    assert "blues" not in trained
    assert "country" not in trained
    assert not set(dataset.track_ids[split.train]) & set(dataset.track_ids[split.valid])
