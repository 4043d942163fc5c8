"""``organize`` runs end to end on real audio files written here, against a fake classifier
whose answer is a pure function of the audio (its constant level), so every placement is
predictable: level 0.1 -> blues, 0.2 -> jazz, 0.3 -> metal, 0.4 -> rock, probability twice the
level, silence abstains. The real server is in tests/integration/test_organize.py."""

from __future__ import annotations

import json
import queue
import threading
from collections import Counter
from collections.abc import Generator, Iterable
from concurrent.futures import Future
from concurrent.futures import wait as real_wait
from pathlib import Path

import grpc
import numpy as np
import pytest
import soundfile

from client.cli import main
from client.errors import GenreClientError
from client.organize.folder import OrganizeOptions, organize, resolve_audio_model
from client.organize.library import read_report
from client.requests import Encoding
from client.results import AudioFrontEndInfo, ModelInfo, StreamUpdate

LABELS = ("blues", "jazz", "metal", "rock")
RATE = 8000
WINDOW_SECONDS = 1.0
HOP_SECONDS = 0.5
FAILURES = {
    0.5: grpc.StatusCode.DEADLINE_EXCEEDED,  # the server's fault: tried again next run
    0.6: grpc.StatusCode.INVALID_ARGUMENT,  # the file's fault: not tried again until it changes
    0.9: grpc.StatusCode.UNAVAILABLE,  # no file would fare better: the run stops
}


def audio_model(name: str = "fake-audio", kind: str = "audio") -> ModelInfo:
    return ModelInfo(
        name=name,
        version="2",
        kind=kind,  # type: ignore[arg-type]
        labels=LABELS,
        features=(),
        metrics={},
        split_protocol="",
        is_default=True,
        audio=AudioFrontEndInfo(RATE, 256, 128, 32, WINDOW_SECONDS, HOP_SECONDS),
    )


class FakeStreams:
    """Streams are consumed in full, as the server would; answers come from the level."""

    def __init__(self, overloaded_once: float | None = None) -> None:
        self.streamed: Counter[float] = Counter()
        self._lock = threading.Lock()
        self._overloaded_once = overloaded_once
        self.chunks_read = 0

    def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]:
        return [audio_model(), audio_model("fake-features", "features")]

    def stream_audio(
        self,
        model: str,
        chunks: Iterable[bytes],
        *,
        sample_rate: int,
        encoding: Encoding = "s16le",
        channels: int = 1,
        hop_seconds: float = 0.0,
        top_k: int = 0,
        version: str = "",
        timeout: float | None = None,
    ) -> Generator[StreamUpdate, None, None]:
        assert (model, version, encoding) == ("fake-audio", "2", "f32le")
        assert channels in (1, 2)
        return self._answer(chunks, sample_rate, channels)

    def _answer(
        self, chunks: Iterable[bytes], sample_rate: int, channels: int
    ) -> Generator[StreamUpdate, None, None]:
        """A window answer each hop once a window is full, as the server gives them, then the
        track's. The chunks are read on a thread of their own, as gRPC reads them, so nothing
        but the client's own pacing keeps them from running ahead of the answers."""
        arrived: queue.Queue[bytes | Exception | None] = queue.Queue()
        threading.Thread(target=self._read, args=(chunks, arrived), daemon=True).start()
        received: list[bytes] = []
        seconds = 0.0
        next_window_end = WINDOW_SECONDS
        while (chunk := arrived.get(timeout=10)) is not None:
            if isinstance(chunk, Exception):
                raise chunk  # as the client re-raises its chunk source's error
            received.append(chunk)
            seconds += len(chunk) / 4 / channels / sample_rate
            while seconds >= next_window_end:
                yield self._update(next_window_end, [(LABELS[0], 1.0)], final=False, seconds=0)
                next_window_end += HOP_SECONDS
        samples = np.frombuffer(b"".join(received), dtype="<f4")
        level = round(float(np.abs(samples).mean()), 1)
        with self._lock:
            self.streamed[level] += 1
            first = self.streamed[level] == 1
        if level == self._overloaded_once and first:
            raise GenreClientError(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many streams")
        if level in FAILURES:
            raise GenreClientError(FAILURES[level], f"scripted failure at level {level}")
        genre = LABELS[(round(level * 10) - 1) % len(LABELS)]
        track = [(genre, 2 * level), *((g, 0.0) for g in LABELS if g != genre)]
        seconds = len(samples) / channels / sample_rate
        yield self._update(seconds, track, final=True, seconds=seconds, silent=level == 0)

    def _read(
        self, chunks: Iterable[bytes], arrived: queue.Queue[bytes | Exception | None]
    ) -> None:
        try:
            for chunk in chunks:
                arrived.put(chunk)
                with self._lock:
                    self.chunks_read += 1
        except Exception as error:
            arrived.put(error)
        arrived.put(None)

    @staticmethod
    def _update(
        end: float,
        track: list[tuple[str, float]],
        *,
        final: bool,
        seconds: float,
        silent: bool = False,
    ) -> StreamUpdate:
        return StreamUpdate(
            model="fake-audio",
            version="2",
            window_start=max(0.0, end - WINDOW_SECONDS),
            window_end=end,
            window=track,
            track=track,
            final=final,
            padded=False,
            audio_seconds=seconds,
            track_abstention="silence" if silent else "answered",
        )


def write_level(path: Path, level: float, seconds: float = 1.5, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.full((int(seconds * RATE), channels), level, dtype=np.float32)
    soundfile.write(str(path), frames, RATE, subtype="FLOAT")
    return path


def read_playlists(out: Path) -> dict[str, list[Path]]:
    """Playlist stem -> the files it lists (resolved from the relative paths)."""
    playlists: dict[str, list[Path]] = {}
    for playlist in sorted(out.glob("*.m3u8")):
        lines = playlist.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "#EXTM3U"
        assert all(line.startswith("#EXTINF:") for line in lines[1::2])
        playlists[playlist.stem] = [(out / line).resolve() for line in lines[2::2]]
    return playlists


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    write_level(root / "a" / "blues.wav", 0.1)
    write_level(root / "a" / "jazz.wav", 0.2, channels=2)
    write_level(root / "b" / "metal.wav", 0.3, channels=4)  # mixed down to mono
    write_level(root / "rock.wav", 0.4, seconds=2.5)
    write_level(root / "quiet.wav", 0.0)
    (root / "corrupt.ogg").write_bytes(b"OggS" + bytes(range(256)) * 4)
    (root / "tune.m4p").write_bytes(b"\x00\x00\x00\x18ftypM4P ")  # FairPlay DRM
    return root


def run(fake: FakeStreams, library: Path, out: Path, **options: object) -> dict[str, object]:
    summary = organize(
        fake,
        OrganizeOptions(model="fake-audio", input_dir=library, out_dir=out, **options),  # type: ignore[arg-type]
        progress=False,
    )
    loaded: dict[str, object] = json.loads(summary.to_json())
    return loaded


def test_every_file_is_placed_once_by_its_answer(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "playlists"
    fake = FakeStreams()
    summary = run(fake, library, out, min_probability=0.5, jobs=3)
    playlists = read_playlists(out)
    music = library.resolve()
    assert playlists == {
        "metal": [music / "b" / "metal.wav"],
        "rock": [music / "rock.wav"],
        # blues (0.2) and jazz (0.4) are under 0.5; the silent file abstained
        "unsorted": [music / "a" / "blues.wav", music / "a" / "jazz.wav", music / "quiet.wav"],
    }
    assert "#EXTINF:2,rock" in (out / "rock.m3u8").read_text(encoding="utf-8")
    assert summary["tracks"] == {"metal": 1, "rock": 1}
    assert (summary["abstained"], summary["below_min_probability"]) == (1, 2)
    assert (summary["failed"], summary["classified"], summary["skipped"]) == (2, 6, 0)
    assert fake.streamed == Counter({0.1: 1, 0.2: 1, 0.3: 1, 0.4: 1, 0.0: 1})
    report = {Path(r.path).name: r for r in read_report(out / "report.csv")}
    assert report["corrupt.ogg"].error.startswith("cannot decode: ")
    assert report["tune.m4p"].error.startswith("cannot decode .m4p (AAC under Apple")
    assert (report["rock.wav"].genre, report["rock.wav"].probability) == ("rock", 0.8)
    assert report["rock.wav"].seconds == 2.5
    assert report["quiet.wav"].abstention == "silence"
    assert (report["jazz.wav"].model, report["jazz.wav"].version) == ("fake-audio", "2")


def test_a_rerun_skips_current_files_and_resorts_without_the_server(
    library: Path, tmp_path: Path
) -> None:
    out = tmp_path / "playlists"
    run(FakeStreams(), library, out)
    first = read_playlists(out)
    report = (out / "report.csv").read_text(encoding="utf-8")
    fake = FakeStreams()
    again = run(fake, library, out)
    assert fake.streamed == Counter()
    assert (again["classified"], again["skipped"]) == (0, 6)
    assert read_playlists(out) == first
    assert (out / "report.csv").read_text(encoding="utf-8") == report
    resorted = run(fake, library, out, min_probability=0.7)
    assert fake.streamed == Counter()
    assert resorted["tracks"] == {"rock": 1}
    assert resorted["below_min_probability"] == 3


def test_a_changed_file_is_classified_again_and_moves(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "playlists"
    run(FakeStreams(), library, out)
    assert "rock" in read_playlists(out)
    write_level(library / "rock.wav", 0.1)  # new content, size and mtime
    fake = FakeStreams()
    run(fake, library, out)
    assert fake.streamed == Counter({0.1: 1})
    playlists = read_playlists(out)
    assert "rock" not in playlists  # its last track left: the old playlist is removed
    assert (library / "rock.wav").resolve() in playlists["blues"]
    forced = FakeStreams()
    run(forced, library, out, force=True)
    assert sum(forced.streamed.values()) == 5


def test_a_deleted_file_leaves_the_playlists(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "playlists"
    run(FakeStreams(), library, out)
    (library / "b" / "metal.wav").unlink()
    run(FakeStreams(), library, out)
    assert "metal" not in read_playlists(out)
    paths = [row.path for row in read_report(out / "report.csv")]
    assert not any(path.endswith("metal.wav") for path in paths)


def test_server_faults_are_retried_next_run_file_faults_are_not(tmp_path: Path) -> None:
    library = tmp_path / "music"
    write_level(library / "late.wav", 0.5)
    write_level(library / "refused.wav", 0.6)
    write_level(library / "fine.wav", 0.3)
    out = tmp_path / "out"
    first = run(FakeStreams(), library, out)
    assert first["failed"] == 2
    report = {Path(r.path).name: r for r in read_report(out / "report.csv")}
    assert report["late.wav"].error == "server: DEADLINE_EXCEEDED: scripted failure at level 0.5"
    assert report["refused.wav"].error.startswith("server: INVALID_ARGUMENT")
    fake = FakeStreams()
    run(fake, library, out)
    assert fake.streamed == Counter({0.5: 1})


def test_an_overloaded_server_is_tried_again_in_the_same_run(tmp_path: Path) -> None:
    library = tmp_path / "music"
    write_level(library / "jazz.wav", 0.2)
    fake = FakeStreams(overloaded_once=0.2)
    summary = run(fake, library, tmp_path / "out")
    assert fake.streamed == Counter({0.2: 2})
    assert summary["tracks"] == {"jazz": 1}


def test_an_unreachable_server_stops_the_run_after_writing_what_was_done(tmp_path: Path) -> None:
    library = tmp_path / "music"
    write_level(library / "a.wav", 0.1)
    write_level(library / "b.wav", 0.4)
    write_level(library / "z.wav", 0.9)
    out = tmp_path / "out"
    with pytest.raises(GenreClientError) as caught:
        run(FakeStreams(), library, out, jobs=1)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert read_playlists(out) == {
        "blues": [(library / "a.wav").resolve()],
        "rock": [(library / "b.wav").resolve()],
    }


def test_ctrl_c_leaves_complete_playlists_of_what_was_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "music"
    for number in range(8):
        write_level(library / f"{number}.wav", 0.1 * (1 + number % 4))
    waits = Counter[str]()

    def wait_then_interrupt(
        futures: set[Future[object]], timeout: float | None, return_when: str
    ) -> tuple[set[Future[object]], set[Future[object]]]:
        """The first wait returns once a file is done; Ctrl-C arrives during the second."""
        waits["calls"] += 1
        if waits["calls"] > 1:
            raise KeyboardInterrupt
        return real_wait(futures, timeout=None, return_when=return_when)

    monkeypatch.setattr("client.organize.folder.wait", wait_then_interrupt)
    out = tmp_path / "out"
    summary = run(FakeStreams(), library, out, jobs=1)
    assert summary["interrupted"] is True
    done = read_report(out / "report.csv")
    assert 1 <= len(done) < 8
    placed = [path for paths in read_playlists(out).values() for path in paths]
    assert sorted(placed) == sorted(Path(row.path) for row in done)
    monkeypatch.undo()
    fake = FakeStreams()
    rest = run(fake, library, out)
    assert sum(fake.streamed.values()) == 8 - len(done)
    assert rest["skipped"] == len(done)


def test_dry_run_contacts_no_server_and_writes_nothing(
    library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["--target", "127.0.0.1:1", "organize", "--model", "m", str(library), "--out", str(out)]
    assert main([*args, "--dry-run", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["classify"]) == 6
    assert list(printed["cannot_decode"]) == [str((library / "tune.m4p").resolve())]
    assert not out.exists()
    assert main([*args, "--dry-run"]) == 0
    assert "would classify 6 file(s):" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--jobs", "0"], "--jobs must be >= 1, got 0"),
        (["--min-probability", "1.5"], "--min-probability must be between 0 and 1, got 1.5"),
        (["--hop-seconds", "-1"], "--hop-seconds must be >= 0"),
    ],
)
def test_bad_flags_exit_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = main(["organize", "--model", "m", str(tmp_path), "--out", str(tmp_path / "o"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_the_model_must_be_a_served_audio_model() -> None:
    models = FakeStreams().list_models()
    assert resolve_audio_model(models, "fake-audio", "").version == "2"
    with pytest.raises(ValueError, match="fake-features is a features model"):
        resolve_audio_model(models, "fake-features", "")
    with pytest.raises(ValueError, match=r"no model fake-audio:7; served: fake-audio:2 \(audio\)"):
        resolve_audio_model(models, "fake-audio", "7")
