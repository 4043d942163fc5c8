"""``genre-client organize`` and ``organize-spotify`` against a real server serving the bundled
models, on real shared data: GTZAN audio copied into a library folder (plus a corrupt file), the
same music written in every format a library holds (plus a damaged MP3), and a Spotify export
written in the common export format from rows of ``spotify_11class``."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bench.server_process import ServerProcess
from client import GenreClient
from client.audio import decode_file
from client.cli import main
from client.organize.library import read_report
from client.organize.playlists import file_stem
from client.pacing import split_bytes
from tests.support.encoded_audio import FORMATS, damaged_mp3, write_encoded
from tests.support.harness import start_server_process

pytestmark = pytest.mark.shared_data

AUDIO_MODEL = "gtzan-cnn-lstm"
FEATURES_MODEL = "spotify11-mlp"
HOP_SECONDS = "3"  # one window per 3 s: the files stream in a fraction of a second each
LIBRARY = {
    "classical/classical.00001.ogg": "classical/classical.00001.ogg",
    "jazz/jazz.00001.ogg": "Jazz/jazz.00001.ogg",
    "rock/rock.00001.ogg": "Rock and Pop/rock.00001.ogg",
    "pop/pop.00002.ogg": "Rock and Pop/pop.00002.ogg",
    "metal/metal.00001.ogg": "metal.00001.ogg",
    "hiphop/hiphop.00003.ogg": "hiphop.00003.ogg",
}
"""Shared file (under gtzan/audio) -> where it lies in the library."""
SPOTIFY_ROWS = 48


@pytest.fixture(scope="module")
def served() -> Iterator[ServerProcess]:
    process = start_server_process(
        None, {"GENRE_MODELS": f"{AUDIO_MODEL},{FEATURES_MODEL}", "GENRE_TORCH_THREADS": "1"}
    )
    yield process
    assert process.stop() == 0


@pytest.fixture
def library(data_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "music"
    for source, target in LIBRARY.items():
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / "gtzan" / "audio" / source, root / target)
    (root / "corrupt.ogg").write_bytes(b"OggS" + bytes(range(256)) * 16)
    return root


def organize(served: ServerProcess, *args: str, capsys: pytest.CaptureFixture[str]) -> object:
    code = main(["--target", served.target, *args, "--json", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def read_playlists(out: Path) -> dict[str, list[Path]]:
    playlists = {}
    for playlist in sorted(out.glob("*.m3u8")):
        lines = playlist.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "#EXTM3U"
        assert all(line.startswith("#EXTINF:30,") for line in lines[1::2])
        playlists[playlist.stem] = [(out / line).resolve() for line in lines[2::2]]
    return playlists


def test_a_real_library_is_placed_as_the_stream_answers_and_a_rerun_skips(
    served: ServerProcess, library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "playlists"
    args = ["organize", "--model", AUDIO_MODEL, str(library), "--out", str(out)]
    summary = organize(served, *args, "--jobs", "3", "--hop-seconds", HOP_SECONDS, capsys=capsys)
    assert isinstance(summary, dict)
    assert (summary["classified"], summary["skipped"], summary["failed"]) == (7, 0, 1)
    playlists = read_playlists(out)
    placed = [path for paths in playlists.values() for path in paths]
    songs = sorted((library / target).resolve() for target in LIBRARY.values())
    assert sorted(placed) == songs  # every file exactly once; the corrupt one nowhere

    report = {Path(row.path): row for row in read_report(out / "report.csv")}
    corrupt = report[(library / "corrupt.ogg").resolve()]
    assert corrupt.error.startswith("cannot decode: ")
    with GenreClient(served.target) as genres:
        for song in songs:
            audio = decode_file(song)
            *_, final = genres.stream_audio(
                AUDIO_MODEL,
                split_bytes(audio.pcm, 65536),  # other chunks than organize's: same answer
                sample_rate=audio.sample_rate,
                encoding="f32le",
                channels=audio.channels,
                hop_seconds=float(HOP_SECONDS),
                version=str(summary["version"]),
            )
            genre, probability = final.track[0]
            expected = file_stem(genre) if final.track_abstention == "answered" else "unsorted"
            assert song in playlists[expected], (song, genre, final.track_abstention)
            row = report[song]
            assert (row.genre, row.abstention) == (genre, final.track_abstention)
            assert row.probability == pytest.approx(probability, abs=1e-4)
            assert row.seconds == pytest.approx(final.audio_seconds, abs=1e-3)
            assert (row.model, row.version) == (AUDIO_MODEL, summary["version"])

    texts = {path.name: path.read_text(encoding="utf-8") for path in out.iterdir()}
    again = organize(served, *args, capsys=capsys)
    assert isinstance(again, dict)
    assert (again["classified"], again["skipped"], again["failed"]) == (0, 7, 1)
    assert {path.name: path.read_text(encoding="utf-8") for path in out.iterdir()} == texts

    touched = library / "metal.00001.ogg"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    third = organize(served, *args, "--hop-seconds", HOP_SECONDS, capsys=capsys)
    assert isinstance(third, dict)
    assert (third["classified"], third["skipped"]) == (1, 6)


EXPORT_COLUMNS = {
    "Danceability": "danceability",
    "Energy": "energy",
    "Key": "key",
    "Loudness": "loudness",
    "Mode": "mode",
    "Speechiness": "speechiness",
    "Acousticness": "acousticness",
    "Instrumentalness": "instrumentalness",
    "Liveness": "liveness",
    "Valence": "valence",
    "Tempo": "tempo",
    "Time Signature": "time_signature",
    "Duration (ms)": "duration_in min/ms",
    "Popularity": "Popularity",
}
"""The export's header -> the shared data set's column."""


def as_exported(row: dict[str, str]) -> dict[str, str]:
    """One shared row as Spotify's export gives it: durations in milliseconds (the data set
    has minutes on some rows), and 0 where the data set has a blank key, popularity or
    instrumentalness (its blanks are Spotify's zeros)."""
    cells = {header: row[column] for header, column in EXPORT_COLUMNS.items()}
    duration = float(cells["Duration (ms)"])
    cells["Duration (ms)"] = repr(duration * 60000 if duration < 100 else duration)
    for header in ("Key", "Popularity", "Instrumentalness"):
        cells[header] = cells[header] or "0"
    return cells


def test_a_spotify_export_of_shared_rows_is_sorted_as_the_model_answers_them(
    served: ServerProcess, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (data_dir / "spotify_11class" / "train.csv").open(encoding="utf-8", newline="") as f:
        shared = [row for _, row in zip(range(SPOTIFY_ROWS), csv.DictReader(f), strict=False)]
    assert any(not row["key"] for row in shared)  # the blank-means-zero cases are exercised
    assert any(float(row["duration_in min/ms"]) < 100 for row in shared)  # and minutes
    export = tmp_path / "export.csv"
    header = ["Track URI", "Track Name", "Artist Name(s)", "Album Name", *EXPORT_COLUMNS]
    with export.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        for number, row in enumerate(shared):
            writer.writerow(
                {
                    "Track URI": f"spotify:track:shared{number:04d}",
                    "Track Name": row["Track Name"],
                    "Artist Name(s)": row["Artist Name"],
                    "Album Name": "",
                    **as_exported(row),
                }
            )
        writer.writerow({"Track URI": "spotify:local:::Local+Song:200", "Track Name": "Local"})

    out = tmp_path / "lists"
    summary = organize(served, "organize-spotify", str(export), "--out", str(out), capsys=capsys)
    assert isinstance(summary, dict)
    assert (summary["classified"], summary["failed"]) == (SPOTIFY_ROWS + 1, 1)

    # What the model answers for the data set's own rows, blanks left to the server, with their
    # titles when the default version takes them.
    features = [
        {name: float(row[name]) for name in EXPORT_COLUMNS.values() if row[name]} for row in shared
    ]
    with GenreClient(served.target) as genres:
        info = next(m for m in genres.list_models() if m.name == FEATURES_MODEL and m.is_default)
        titles = [row["Track Name"].strip() for row in shared] if info.takes_titles else None
        expected = genres.classify_features(FEATURES_MODEL, features, titles=titles)
    listed: dict[str, str] = {}
    for path in out.glob("*.csv"):
        if path.name != "report.csv":
            with path.open(encoding="utf-8", newline="") as handle:
                for entry in csv.DictReader(handle):
                    assert entry["Track URI"] not in listed  # each track in one list only
                    listed[entry["Track URI"]] = path.stem
    for number, (scores, abstention) in enumerate(
        zip(expected.predictions, expected.abstentions, strict=True)
    ):
        genre = file_stem(scores[0][0]) if abstention == "answered" else "unsorted"
        assert listed[f"spotify:track:shared{number:04d}"] == genre
    assert len(listed) == SPOTIFY_ROWS
    assert summary["version"] == expected.version

    with (out / "report.csv").open(encoding="utf-8", newline="") as handle:
        report = {row["uri"]: row for row in csv.DictReader(handle)}
    for number, scores in enumerate(expected.predictions):
        row = report[f"spotify:track:shared{number:04d}"]
        assert row["genre"] == scores[0][0]
        assert float(row["probability"]) == pytest.approx(scores[0][1], abs=1e-4)
    assert report["spotify:local:::Local+Song:200"]["error"].startswith("no audio features")


def test_a_library_of_every_format_is_sorted_and_a_damaged_file_reported(
    served: ServerProcess, data_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """One file of each format a library holds (MP3, AAC and ALAC in .m4a, Opus in Ogg and
    WebM, WMA, Vorbis, FLAC, WAV, AIFF), made here from one real track, and a damaged MP3."""
    song = decode_file(data_dir / "gtzan" / "audio" / "classical" / "classical.00001.ogg")
    samples = np.frombuffer(song.pcm, "<f4")[: 9 * song.sample_rate].copy()
    library = tmp_path / "formats"
    for fmt in FORMATS:
        write_encoded(library / f"{fmt.name}{fmt.suffix}", samples, song.sample_rate, fmt)
    damaged_mp3(library / "damaged.mp3", samples, song.sample_rate)
    out = tmp_path / "lists"
    args = ["organize", "--model", AUDIO_MODEL, str(library), "--out", str(out)]
    code = main(["--target", served.target, *args, "--hop-seconds", HOP_SECONDS, "--json",
                 "--no-progress"])  # fmt: skip
    captured = capfd.readouterr()  # file descriptors: FFmpeg would write to 2 directly
    assert code == 0
    assert captured.err == ""
    summary = json.loads(captured.out)
    assert (summary["classified"], summary["failed"]) == (len(FORMATS) + 1, 1)

    report = {Path(row.path).name: row for row in read_report(out / "report.csv")}
    damaged = report.pop("damaged.mp3")
    assert damaged.error.startswith("cannot decode: mp3")
    assert "Invalid data found when processing input" in damaged.error
    assert sorted(report) == sorted(f"{fmt.name}{fmt.suffix}" for fmt in FORMATS)
    for name, row in report.items():
        assert not row.error, (name, row.error)
        assert row.seconds == pytest.approx(9.0, abs=0.1), name
        assert row.abstention in ("answered", "uncertain"), name
    lossless = [report[f"{fmt.name}{fmt.suffix}"] for fmt in FORMATS if not fmt.bit_rate]
    assert len({row.genre for row in lossless}) == 1  # the same samples: the same answer
    placed = [
        Path(line).name
        for playlist in out.glob("*.m3u8")
        for line in playlist.read_text(encoding="utf-8").splitlines()
        if not line.startswith("#")
    ]
    assert sorted(placed) == sorted(report)  # every format in one playlist; the damaged in none
