"""``organize``'s library walk and ``report.csv``: finding audio, recording rows, reading them
back, and what makes a row current."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from client.organize.library import (
    AUDIO_EXTENSIONS,
    REPORT_COLUMNS,
    OrganizeError,
    ReportRow,
    find_library,
    read_report,
    report_text,
)


def write_tone(path: Path, seconds: float = 0.2, sample_rate: int = 8000, **kwargs: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = 0.1 * np.sin(np.arange(int(seconds * sample_rate)) / 5.0).astype(np.float32)
    soundfile.write(str(path), samples, sample_rate, **kwargs)
    return path


def test_extensions_cover_what_a_music_library_holds() -> None:
    common = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".m4a", ".opus", ".webm", ".wma"}
    assert common <= AUDIO_EXTENSIONS
    assert ".mat" not in AUDIO_EXTENSIONS  # Matlab data far more often than audio
    assert ".raw" not in AUDIO_EXTENSIONS  # headerless: nothing says its rate
    assert ".mp4" not in AUDIO_EXTENSIONS  # a film far more often than a song


def test_find_library_walks_recursively_and_skips_hidden_and_output(tmp_path: Path) -> None:
    library = tmp_path / "music"
    found = [
        write_tone(library / "a.wav"),
        write_tone(library / "Album" / "b.FLAC", format="FLAC"),
        write_tone(library / "Album" / "Disc 2" / "c.ogg", format="OGG"),
    ]
    write_tone(library / ".hidden.wav")
    write_tone(library / ".cache" / "d.wav")
    write_tone(library / "playlists" / "e.wav")  # the output folder, inside the library
    (library / "cover.jpg").write_bytes(b"\xff\xd8")
    (library / "notes.txt").write_text("x")
    (library / "Album" / "f.m4a").write_bytes(b"\x00")  # found; decoding will say it is broken
    (library / "Album" / "g.m4p").write_bytes(b"\x00")  # DRM: listed as undecodable
    found.append(library / "Album" / "f.m4a")
    result = find_library(library, skip=[library / "playlists"])
    assert result.audio == tuple(sorted(path.resolve() for path in found))
    assert result.unsupported == ((library / "Album" / "g.m4p").resolve(),)


def test_find_library_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(OrganizeError, match="absent: not a directory"):
        find_library(tmp_path / "absent")


def test_report_round_trips_and_sorts_by_path(tmp_path: Path) -> None:
    rows = [
        ReportRow(
            path="/m/z.ogg",
            genre="rock",
            probability=0.8125,
            abstention="answered",
            model="gtzan-cnn-lstm",
            version="3",
            seconds=30.013,
            size=1234,
            mtime_ns=1_700_000_000_123_456_789,
            title='Band - "Song", live',
        ),
        ReportRow(
            path="/m/a, b.ogg", model="gtzan-cnn-lstm", version="3", error="cannot decode: x"
        ),
    ]
    report = tmp_path / "report.csv"
    report.write_text(report_text(rows), encoding="utf-8")
    header = report.read_text(encoding="utf-8").splitlines()[0]
    assert header == ",".join(REPORT_COLUMNS)
    assert header.startswith("path,genre,probability,abstention,model,version,seconds")
    assert read_report(report) == [rows[1], rows[0]]


def test_a_row_is_current_only_for_the_same_file_state_and_model() -> None:
    row = ReportRow(path="/m/a", model="m", version="3", size=10, mtime_ns=99)
    assert row.is_current(10, 99, "m")
    assert row.is_current(10, 99, "m", "3")
    assert not row.is_current(11, 99, "m")  # size changed
    assert not row.is_current(10, 100, "m")  # touched
    assert not row.is_current(10, 99, "other")
    assert not row.is_current(10, 99, "m", "2")
    unstamped = ReportRow(path="/m/a", model="m", error="server: DEADLINE_EXCEEDED: late")
    assert not unstamped.is_current(10, 99, "m")


def test_no_report_yet_is_an_empty_history(tmp_path: Path) -> None:
    assert read_report(tmp_path / "report.csv") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path,genre\n/m/a,rock\n", "not a report of genre-client organize"),
        (",".join(REPORT_COLUMNS) + "\n/m/a,rock,high,,m,1,,,,,\n", "line 2, column 'probability'"),
        (",".join(REPORT_COLUMNS) + "\n,rock,0.5,,m,1,,,,,\n", "line 2: empty path"),
        (",".join(REPORT_COLUMNS) + "\n/m/a,rock,inf,,m,1,,,,,\n", "'inf' is not finite"),
    ],
)
def test_a_malformed_report_is_named_precisely(tmp_path: Path, text: str, message: str) -> None:
    report = tmp_path / "report.csv"
    report.write_text(text, encoding="utf-8")
    with pytest.raises(OrganizeError, match=message):
        read_report(report)
