"""``client.audio`` decodes every format a music library holds, through PyAV: files made here
in each format decode to the tone they were made from, at their own rate, with their tags; a
damaged file fails with the decoder's reason and nothing raw on the terminal."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from client.audio import AudioDecodeError, AudioFile, decode_file
from client.cli import main
from client.organize.library import read_report
from tests.client.test_organize_runs import FakeStreams, run
from tests.support.encoded_audio import FORMATS, Format, damaged_mp3, write_encoded

RATE = 22050
TONE_HZ = 440.0
SECONDS = 2.0


def tone(seconds: float = SECONDS, level: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda fmt: fmt.name)
def test_each_format_decodes_to_the_tone_at_its_own_rate(tmp_path: Path, fmt: Format) -> None:
    path = write_encoded(tmp_path / f"tone{fmt.suffix}", tone(), RATE, fmt)
    audio = decode_file(path)
    assert audio.sample_rate == (fmt.sample_rate or RATE)
    assert audio.channels == 2
    # Lossy codecs pad to whole frames (a few tens of ms); none may lose or invent a second.
    assert audio.seconds == pytest.approx(SECONDS, abs=0.06)
    left = np.frombuffer(audio.pcm, "<f4").reshape(-1, 2)[:, 0]
    spectrum = np.abs(np.fft.rfft(left))
    assert np.argmax(spectrum) * audio.sample_rate / len(left) == pytest.approx(TONE_HZ, abs=2)
    assert 0.15 < float(np.sqrt(np.mean(np.square(left)))) < 0.25  # a 0.3 sine is 0.21 RMS


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.suffix != ".aiff"], ids=lambda f: f.name)
def test_titles_come_from_each_format_s_tags(tmp_path: Path, fmt: Format) -> None:
    tags = {"title": "Blue in Green", "artist": "Miles Davis"}
    path = write_encoded(tmp_path / f"t{fmt.suffix}", tone(0.5), RATE, fmt, tags)
    with AudioFile(path) as audio:
        assert audio.title() == "Miles Davis - Blue in Green"


def test_blocks_are_whole_and_cover_the_file(tmp_path: Path) -> None:
    path = write_encoded(tmp_path / "t.flac", tone(1.0), RATE, FORMATS[-3])
    with AudioFile(path) as audio:
        blocks = list(audio.blocks(1000))
    assert [len(block) for block in blocks[:-1]] == [1000] * (len(blocks) - 1)
    assert sum(len(block) for block in blocks) == RATE


def test_a_damaged_mp3_names_the_decoder_the_place_and_the_reason(tmp_path: Path) -> None:
    path = damaged_mp3(tmp_path / "bad.mp3", tone(3.0), RATE)
    with pytest.raises(AudioDecodeError, match=r"^mp3\w* at \d+\.\d s: Invalid data found"):
        decode_file(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"OggS" + bytes(range(256)) * 4, "(opening the file)"), (None, "No such file")],
)
def test_files_that_do_not_open_say_why(tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "x.ogg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioDecodeError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode_file(path)


def test_without_pyav_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # import av raises ImportError
    with pytest.raises(AudioDecodeError, match=r"pip install 'genre-serve\[client\]'"):
        decode_file(tmp_path / "any.mp3")


def test_organize_reports_a_damaged_file_and_prints_nothing_raw(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    library = tmp_path / "music"
    damaged_mp3(library / "bad.mp3", tone(3.0), RATE)
    constant = np.full(RATE, 0.4, dtype=np.float32)  # the fake's rock
    write_encoded(library / "good.flac", constant, RATE, FORMATS[-3])
    summary = run(FakeStreams(), library, tmp_path / "out")
    assert (summary["failed"], summary["tracks"]) == (1, {"rock": 1})
    report = {Path(row.path).name: row for row in read_report(tmp_path / "out" / "report.csv")}
    assert report["bad.mp3"].error.startswith("cannot decode: mp3")
    assert "Invalid data found when processing input" in report["bad.mp3"].error
    assert report["bad.mp3"].size == (library / "bad.mp3").stat().st_size  # not tried again
    captured = capfd.readouterr()  # file descriptors 1 and 2: what a C library would write
    assert (captured.out, captured.err) == ("", "")


def test_stream_of_an_unreadable_file_exits_2_with_the_reason(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = damaged_mp3(tmp_path / "bad.mp3", tone(3.0), RATE)
    assert main(["--target", "127.0.0.1:1", "stream", str(path), "--model", "m"]) == 2
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: cannot decode {path}: mp3")
    assert captured.err.count("\n") == 1  # one line of ours, nothing of FFmpeg's
