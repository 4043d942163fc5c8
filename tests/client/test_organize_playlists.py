"""What ``organize`` writes: M3U playlists, URI CSVs, file names, atomic replacement, the
placement rule, the summary and the progress line."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from client.organize.library import ReportRow
from client.organize.placement import Summary, place
from client.organize.playlists import (
    SpotifyTrack,
    Track,
    file_stem,
    m3u8_text,
    remove_stale,
    spotify_csv_text,
    write_atomic,
)
from client.organize.progress import ProgressBar, format_eta, progress_line


def test_m3u8_has_header_extinf_and_paths_relative_to_the_playlist(tmp_path: Path) -> None:
    out = tmp_path / "playlists"
    tracks = [
        Track(tmp_path / "music" / "a b" / "song.flac", 183.6, "Artist - Song"),
        Track(out / "here.ogg", None, ""),
        Track(tmp_path / "music" / "x.mp3", 30.0, "two\nlines,  with comma"),
    ]
    lines = m3u8_text(tracks, out).splitlines()
    assert lines == [
        "#EXTM3U",
        "#EXTINF:184,Artist - Song",
        "../music/a b/song.flac",
        "#EXTINF:-1,here",  # unknown length, title from the file name
        "here.ogg",
        "#EXTINF:30,two lines, with comma",
        "../music/x.mp3",
    ]
    # Every relative path leads from the playlist's folder back to the file.
    for track, path in zip(tracks, lines[2::2], strict=True):
        assert (out / path).resolve() == track.path.resolve()


@pytest.mark.parametrize(
    ("genre", "stem"),
    [
        ("rock", "rock"),
        ("Acoustic/Folk", "Acoustic-Folk"),
        ("Indie Alt", "Indie Alt"),
        ('a:b*c?"d<e>|f\\g', "a-b-c-d-e-f-g"),
        ("unsorted", "unsorted-genre"),
        ("Report", "Report-genre"),
        ("..", "genre"),
    ],
)
def test_file_stem_is_safe_and_never_collides_with_our_own_files(genre: str, stem: str) -> None:
    assert file_stem(genre) == stem


def test_write_atomic_replaces_whole_files_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out" / "rock.m3u8"
    write_atomic(target, "#EXTM3U\nold\n")
    write_atomic(target, "#EXTM3U\nnew ✓\n")
    assert target.read_text(encoding="utf-8") == "#EXTM3U\nnew ✓\n"
    assert os.listdir(target.parent) == ["rock.m3u8"]


def test_remove_stale_removes_only_unwritten_candidates_in_the_folder(tmp_path: Path) -> None:
    for name in ("jazz.m3u8", "rock.m3u8", "mine.m3u8"):
        (tmp_path / name).write_text("#EXTM3U\n")
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    (elsewhere / "jazz.m3u8").write_text("#EXTM3U\n")
    removed = remove_stale(
        tmp_path,
        written=[tmp_path / "rock.m3u8"],
        candidates=[tmp_path / "jazz.m3u8", tmp_path / "rock.m3u8", elsewhere / "jazz.m3u8"],
    )
    assert removed == [tmp_path / "jazz.m3u8"]
    assert sorted(os.listdir(tmp_path)) == ["mine.m3u8", "rock.m3u8", "sub"]
    assert (elsewhere / "jazz.m3u8").exists()


def test_spotify_csv_quotes_names_and_keeps_the_uri_column_first() -> None:
    text = spotify_csv_text(
        [SpotifyTrack("spotify:track:1", 'Song, "quoted"', "A; B"), SpotifyTrack("u2", "", "")]
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["Track URI", "Track Name", "Artist Name(s)"],
        ["spotify:track:1", 'Song, "quoted"', "A; B"],
        ["u2", "", ""],
    ]


def row(**fields: object) -> ReportRow:
    base: dict[str, object] = {"path": "/m/a.ogg", "genre": "rock", "probability": 0.6}
    base["abstention"] = "answered"
    return ReportRow(**{**base, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "threshold", "expected"),
    [
        ({}, None, ("rock", "placed")),
        ({}, 0.6, ("rock", "placed")),  # at the threshold is enough
        ({}, 0.61, ("unsorted", "below_min_probability")),
        ({"abstention": "silence"}, None, ("unsorted", "abstained")),
        ({"abstention": "not_music", "probability": 0.99}, 0.1, ("unsorted", "abstained")),
        ({"abstention": "", "error": "cannot decode: x"}, None, (None, "failed")),
        # "uncertain" is the server's threshold; an explicit one replaces it, either way
        ({"abstention": "uncertain", "probability": 0.25}, None, ("unsorted", "abstained")),
        ({"abstention": "uncertain", "probability": 0.25}, 0.2, ("rock", "placed")),
        (
            {"abstention": "uncertain", "probability": 0.25},
            0.3,
            ("unsorted", "below_min_probability"),
        ),
        (
            {"abstention": "answered", "probability": 0.25},
            0.3,
            ("unsorted", "below_min_probability"),
        ),
    ],
)
def test_place(fields: dict[str, object], threshold: float | None, expected: object) -> None:
    assert place(row(**fields), threshold) == expected


def test_summary_counts_and_renders_text_and_json() -> None:
    rows = [
        row(),
        row(path="/m/b", genre="jazz", probability=0.9),
        row(path="/m/c", probability=0.3),
        row(path="/m/d", abstention="silence"),
        row(path="/m/e", error="cannot decode: nope"),
    ]
    summary = Summary.of(
        rows,
        0.5,
        model="m",
        version="3",
        classified=4,
        skipped=1,
        seconds=2.25,
        outputs=["/o/jazz.m3u8", "/o/report.csv"],
    )
    assert (summary.tracks, summary.abstained, summary.below_min_probability) == (
        {"jazz": 1, "rock": 1},
        1,
        1,
    )
    assert (summary.failed, summary.unsorted) == (1, 2)
    loaded = json.loads(summary.to_json())
    assert loaded["tracks"] == {"jazz": 1, "rock": 1}
    assert (loaded["unsorted"], loaded["failed"], loaded["seconds"]) == (2, 1, 2.25)
    text = summary.text()
    assert "why each failed: /o/report.csv" in text
    assert "m:3: 4 classified, 1 unchanged since the last run; took 2.2 s" in text


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "--:--"), (0.4, "0:00"), (75, "1:15"), (3725, "1:02:05")]
)
def test_format_eta(seconds: float | None, text: str) -> None:
    assert format_eta(seconds) == text


def test_progress_line_rate_and_eta() -> None:
    line = progress_line(10, 40, elapsed=5.0, note="1 failed")
    assert line.startswith("[" + "#" * 6 + "-" * 18 + "] 10/40 files")
    assert "2.0 files/s" in line
    assert "ETA 0:15" in line  # 30 files left at 2 a second
    assert line.endswith("1 failed")
    assert "ETA --:--" in progress_line(0, 40, elapsed=1.0)


def test_progress_bar_draws_on_request_and_ends_its_line() -> None:
    stream = io.StringIO()
    now = [0.0]
    bar = ProgressBar(2, stream=stream, enabled=True, clock=lambda: now[0])
    bar.advance(0)
    now[0] = 1.0
    bar.advance()
    now[0] = 2.0
    bar.advance()
    bar.close()
    drawn = stream.getvalue()
    assert drawn.endswith("\n")
    assert "2/2 files  1.0 files/s  ETA 0:00" in drawn.split("\r")[-1]
    silent = io.StringIO()
    quiet = ProgressBar(2, stream=silent, enabled=False)
    quiet.advance(2)
    quiet.close()
    assert silent.getvalue() == ""
