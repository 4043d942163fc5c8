"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

from tests.support import suites

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR_VARIABLE = "GENRE_DATA_DIR"
KSERVE_CRDS_VARIABLE = "GENRE_KSERVE_CRDS_DIR"


def shared_dir(variable: str, name: str) -> Path:
    """A folder of ``shared/`` beside the checkout (``../shared/<name>``) unless ``variable``
    names another place."""
    configured = os.environ.get(variable)
    return Path(configured) if configured else REPOSITORY_ROOT.parent / "shared" / name


def shared_data_dir() -> Path:
    """The real public data (``../shared/data`` beside the checkout unless GENRE_DATA_DIR says)."""
    return shared_dir(DATA_DIR_VARIABLE, "data")


def existing(directory: Path, what: str, variable: str) -> Path:
    """Skips the test, saying why, when ``directory`` is not on this machine."""
    if not directory.is_dir():
        pytest.skip(f"{what} not found at {directory}; set {variable} to run this")
    return directory


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return existing(shared_data_dir(), "shared data", DATA_DIR_VARIABLE)


@pytest.fixture(scope="session")
def kserve_crds_dir() -> Path:
    """KServe's CustomResourceDefinitions (``../shared/kserve-crds`` unless
    GENRE_KSERVE_CRDS_DIR says), to validate deploy/kserve against."""
    return existing(
        shared_dir(KSERVE_CRDS_VARIABLE, "kserve-crds"), "KServe's CRDs", KSERVE_CRDS_VARIABLE
    )


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
