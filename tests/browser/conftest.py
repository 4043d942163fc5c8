"""Headless Chromium from Debian (``chromium``, ``chromium-driver``) driven by selenium.

The driver is the system's ``/usr/bin/chromedriver`` named explicitly, so selenium-manager never
downloads a browser or a driver. Without them the tests skip, naming the packages, and fail
under GENRE_REQUIRE_ALL_SUITES=1 (``tests/support/suites.py``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import REPOSITORY_ROOT
from tests.support.harness import start_server_process
from tests.support.web import free_port

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"
MODEL = "gtzan-cnn-lstm"  # the bundled default audio model
Driver = webdriver.Chrome


def chromium_or_skip() -> tuple[str, str]:
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    driver = shutil.which(DRIVER)
    if browser is None or driver is None:
        pytest.skip(
            "chromium and chromedriver are needed by tests/browser and are not installed "
            "(Debian packages chromium and chromium-driver; scripts/install_test_tools.sh)"
        )
    return browser, driver


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    """``python -m server`` with the bundled audio model and the web port on loopback: a
    separate process, so the blocking WebDriver calls never stall its event loop."""
    chromium_or_skip()
    port = free_port()
    server = start_server_process(
        REPOSITORY_ROOT / "models",
        {
            "GENRE_MODELS": MODEL,
            "GENRE_HTTP_PORT": str(port),
            "GENRE_HTTP_HOST": "127.0.0.1",
            "GENRE_TORCH_THREADS": "1",
        },
    )
    try:
        starting = next(r for r in server.log_lines if r.get("event") == "starting")
        assert starting["http_port"] == port
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Callable[..., Driver]]:
    """Starts headless Chromium; ``fake_microphone``: a WAV file it hears as its microphone."""
    browser, driver_path = chromium_or_skip()
    started: list[Driver] = []

    def start(fake_microphone: Path | None = None) -> Driver:
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for argument in (
            "--headless=new",
            "--no-sandbox",  # root in a container has no user namespace for the sandbox
            "--disable-dev-shm-usage",
            "--window-size=1100,860",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--autoplay-policy=no-user-gesture-required",  # listen=1 starts without a click
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # for page_errors
        if fake_microphone is not None:
            options.add_argument("--use-fake-ui-for-media-stream")
            options.add_argument("--use-fake-device-for-media-stream")
            options.add_argument(f"--use-file-for-fake-audio-capture={fake_microphone}")
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        started.append(driver)
        return driver

    try:
        yield start
    finally:
        for driver in started:
            driver.quit()


def page_errors(driver: Driver) -> list[str]:
    """What the page's console said at level SEVERE: script errors, failed loads."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry["message"] for entry in entries if entry["level"] == "SEVERE"]
