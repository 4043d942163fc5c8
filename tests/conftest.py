"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR_VARIABLE = "GENRE_DATA_DIR"


def shared_data_dir() -> Path:
    """The real public data (``../shared/data`` beside the checkout unless GENRE_DATA_DIR says)."""
    configured = os.environ.get(DATA_DIR_VARIABLE)
    return Path(configured) if configured else REPOSITORY_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Skips the test, saying why, when the shared data is not on this machine."""
    directory = shared_data_dir()
    if not directory.is_dir():
        pytest.skip(f"shared data not found at {directory}; set {DATA_DIR_VARIABLE} to run this")
    return directory
