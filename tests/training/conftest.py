"""Fixtures of the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_TRACKS = {
    "train": ("classical/classical.00030", "jazz/jazz.00000", "rock/rock.00000"),
    "valid": ("classical/classical.00001", "jazz/jazz.00002", "rock/rock.00001"),
}
"""Three shared GTZAN tracks on each list: enough for a pipeline to run end to end."""


@pytest.fixture
def tiny_data(data_dir: Path, tmp_path: Path) -> Path:
    """A data directory in the shared layout holding :data:`TINY_TRACKS` (links) and lists."""
    root = tmp_path / "data" / "gtzan"
    for part, tracks in TINY_TRACKS.items():
        for track in tracks:
            target = root / "audio" / f"{track}.ogg"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(data_dir / "gtzan" / "audio" / f"{track}.ogg")
        (root / "splits").mkdir(exist_ok=True)
        lines = "".join(f"{track}.wav\n" for track in tracks)
        (root / "splits" / f"{part}_filtered.txt").write_text(lines)
    return root.parent
