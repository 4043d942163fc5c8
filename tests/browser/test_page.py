"""The page in headless Chromium: a classical track heard through a fake microphone, a silent
microphone, and a rock track dropped onto the page, each answered by the bundled audio model
over the WebSocket bridge.

Both tracks were picked because the bundled ``gtzan-cnn-lstm`` gets them right with certainty
(every window of ``classical.00004`` classical, ``rock.00001`` rock at 0.985 over the track),
so a wrong genre on the page is the page's or the bridge's fault, not the model's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser.conftest import MODEL, Driver, page_errors

pytestmark = pytest.mark.browser
SCREENSHOT_VARIABLE = "GENRE_WEB_SCREENSHOT"  # also save the page's picture here (README's)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Drops ``arguments[0]``'s file onto the drop zone as a real drag-and-drop would.
DROP = """
const dropped = new DataTransfer();
dropped.items.add(arguments[0].files[0]);
arguments[0].remove();
document.getElementById("drop").dispatchEvent(
  new DragEvent("drop", {dataTransfer: dropped, bubbles: true, cancelable: true}));
"""
MAKE_SOURCE = """
const source = document.createElement("input");
source.type = "file";
source.id = "test-source";
document.body.append(source);
return source;
"""


def text(driver: Driver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def windows_shown(driver: Driver) -> int:
    return int(driver.find_element(By.ID, "window-count").get_attribute("data-count") or 0)


@pytest.mark.shared_data
def test_listening_to_a_classical_track_shows_classical(
    chromium: Callable[..., Driver], page_url: str, data_dir: Path, tmp_path: Path
) -> None:
    samples, rate = soundfile.read(
        data_dir / "gtzan" / "audio" / "classical" / "classical.00004.ogg", dtype="int16"
    )
    microphone = tmp_path / "classical.wav"  # Chromium's fake capture reads WAV only
    soundfile.write(microphone, samples, rate, subtype="PCM_16")
    driver = chromium(fake_microphone=microphone)
    driver.get(f"{page_url}/?model={MODEL}&listen=1")
    WebDriverWait(driver, 45, poll_frequency=0.25).until(lambda d: windows_shown(d) >= 4)
    assert text(driver, "track-genre") == "classical"
    assert "Listening at 22050 Hz" in text(driver, "status")
    bars = driver.find_elements(By.CSS_SELECTOR, "#chart .bar")
    assert bars[0].get_attribute("data-genre") == "classical"
    assert len(bars) == 5  # the page asks for the top 5
    assert text(driver, "latency").startswith("last ")
    driver.find_element(By.ID, "stop").click()
    WebDriverWait(driver, 15, poll_frequency=0.25).until(
        lambda d: text(d, "status").startswith("Done")
    )
    assert text(driver, "track-genre") == "classical"
    assert page_errors(driver) == []


def test_a_silent_microphone_shows_the_silence_abstention(
    chromium: Callable[..., Driver], page_url: str, tmp_path: Path
) -> None:
    microphone = tmp_path / "silence.wav"
    soundfile.write(microphone, np.zeros(22050 * 10, dtype=np.int16), 22050, subtype="PCM_16")
    driver = chromium(fake_microphone=microphone)
    driver.get(f"{page_url}/?model={MODEL}&listen=1")
    WebDriverWait(driver, 45, poll_frequency=0.25).until(lambda d: windows_shown(d) >= 2)
    genre = driver.find_element(By.ID, "track-genre")
    assert genre.text == "silence"
    assert genre.get_attribute("data-abstention") == "silence"
    assert text(driver, "track-probability") == ""
    assert page_errors(driver) == []


@pytest.mark.shared_data
def test_dropping_a_rock_track_shows_rock(
    chromium: Callable[..., Driver], page_url: str, data_dir: Path, tmp_path: Path
) -> None:
    track = data_dir / "gtzan" / "audio" / "rock" / "rock.00001.ogg"
    driver = chromium()
    driver.get(f"{page_url}/?model={MODEL}&pace=0")  # pace 0: as fast as the server answers
    WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    source = driver.execute_script(MAKE_SOURCE)
    source.send_keys(str(track))
    driver.execute_script(DROP, source)
    WebDriverWait(driver, 45, poll_frequency=0.25).until(
        lambda d: text(d, "status").startswith("Done")
    )
    assert text(driver, "status") == "Done: 30.0 s of audio."
    assert text(driver, "track-genre") == "rock"
    assert windows_shown(driver) == 20  # 3-s windows every 1.5 s over 30 s, then the tail's
    assert page_errors(driver) == []
    picture = tmp_path / "web-page.png"
    assert driver.save_screenshot(str(picture))
    assert picture.read_bytes().startswith(PNG_MAGIC)
    if destination := os.environ.get(SCREENSHOT_VARIABLE):
        shutil.copyfile(picture, destination)
