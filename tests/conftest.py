"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

from tests.support import suites

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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "image: builds the container image and runs it (podman, buildah, mmdebstrap; minutes)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Where every suite is required (CI), a skip for a missing tool is a failure."""
    report = yield
    suites.fail_if_a_tool_is_missing(report, os.environ)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Ends every run with the suites it skipped and why (tests/support/suites.py)."""
    suites.write_banner(terminalreporter)
