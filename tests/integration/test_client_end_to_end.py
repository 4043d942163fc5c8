"""The real client library and CLI against a real server (no scripted servicer here)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from bench.server_process import ServerProcess
from client import AsyncGenreClient, GenreClient, GenreClientError
from client.cli import main as client_main
from server.app import App
from tests.support.checkpoints import (
    AUDIO_LABELS,
    FEATURE_NAMES,
    LABELS,
    TINY_FRONTEND,
    TITLES,
    example_row,
    write_tiny_audio_model,
    write_tiny_model,
    write_tiny_titled_model,
)
from tests.support.harness import start_server_process
from tests.support.synthetic_audio import pcm_s16le, synth_clip, write_clip


@pytest.fixture(scope="module")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    repository = tmp_path_factory.mktemp("client-e2e") / "models"
    write_tiny_model(repository, "tiny-mlp", seed=1)
    write_tiny_audio_model(repository, "tiny-audio")
    write_tiny_titled_model(repository, "tiny-titled")
    process = start_server_process(repository, {"GENRE_TORCH_THREADS": "1"})
    yield process
    process.stop()


def test_sync_client_lists_and_classifies(server_process: ServerProcess) -> None:
    with GenreClient(server_process.target) as client:
        models = {info.name: info for info in client.list_models()}
        info = models["tiny-mlp"]
        assert (info.name, info.version, info.kind) == ("tiny-mlp", "1", "features")
        assert models["tiny-audio"].kind == "audio"
        named = client.classify_features("tiny-mlp", [example_row(), example_row(tempo=60.0)])
        assert named.version == "1"
        assert len(named.predictions) == 2
        assert all(genre in LABELS for genre in named.top())
        values = np.array([[example_row()[n] for n in FEATURE_NAMES]] * 2, dtype=np.float32)
        dense = client.classify_dense("tiny-mlp", FEATURE_NAMES, values, top_k=1)
        assert [row[0][0] for row in dense.predictions] == [named.top()[0]] * 2
        with pytest.raises(GenreClientError) as caught:
            client.classify_features("absent", [example_row()])
        assert caught.value.code == grpc.StatusCode.NOT_FOUND


def test_cli_classifies_a_csv_with_extra_and_empty_columns(
    server_process: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "tracks.csv"
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [*FEATURE_NAMES, "label"])
        writer.writeheader()
        writer.writerow({**example_row(), "label": "rock"})
        writer.writerow({**example_row(tempo=90.0), "key": "", "label": "jazz"})  # key imputed
    code = client_main(
        ["--target", server_process.target, "features", "--model", "tiny-mlp", "--json", str(table)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "label" in captured.err  # the dropped column is mentioned
    output = json.loads(captured.out)
    assert output["model"] == "tiny-mlp"
    assert [row["genre"] in LABELS for row in output["rows"]] == [True, True]


async def test_async_client_against_the_in_process_server(app: App) -> None:
    async with AsyncGenreClient(f"127.0.0.1:{app.grpc_port}") as client:
        models = await client.list_models()
        assert {(m.name, m.version) for m in models} == {
            ("tiny-mlp", "1"),
            ("tiny-mlp", "2"),
            ("other-mlp", "1"),
        }
        result = await client.classify_features("tiny-mlp", [example_row()], version="1")
        assert result.version == "1"
        assert sum(p for _, p in result.predictions[0]) == pytest.approx(1.0, abs=1e-5)


def test_sync_client_streams_audio(server_process: ServerProcess) -> None:
    clip = pcm_s16le(synth_clip("classical", 1.5, TINY_FRONTEND.sample_rate, seed=2))
    pieces = [clip[i : i + 999] for i in range(0, len(clip), 999)]  # odd sizes, split samples
    with GenreClient(server_process.target) as client:
        updates = list(
            client.stream_audio("tiny-audio", pieces, sample_rate=TINY_FRONTEND.sample_rate)
        )
    *windows, final = updates
    assert len(windows) == 5  # 0.5 s windows every 0.25 s over 1.5 s
    assert final.final
    assert {genre for genre, _ in final.track} == set(AUDIO_LABELS)


def test_cli_streams_a_file_at_its_own_rate(
    server_process: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_clip(tmp_path / "song.wav", synth_clip("metal", 1.0, 16000, seed=4), 16000)
    code = client_main(
        ["--target", server_process.target, "stream", "--model", "tiny-audio", "--json", str(path)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    updates = [json.loads(line) for line in captured.out.splitlines()]
    assert len(updates) == 3 + 1
    assert updates[-1]["final"] is True
    assert updates[-1]["audio_seconds"] == pytest.approx(1.0)


def test_titles_from_the_sdk_and_from_a_track_name_column(
    server_process: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``titles=`` in the SDK and a ``Track Name`` column in ``genre-client features`` reach the
    model; a row with an empty title gets the answer of a row sent without one."""
    rows = [example_row(), example_row(tempo=60.0)]
    with GenreClient(server_process.target) as client:
        info = {m.name: m for m in client.list_models()}["tiny-titled"]
        assert info.takes_titles
        plain = client.classify_features("tiny-titled", rows)
        titled = client.classify_features("tiny-titled", rows, titles=[TITLES[0], ""])
    assert titled.predictions[1] == plain.predictions[1]
    assert titled.predictions[0] != plain.predictions[0]
    path = tmp_path / "tracks.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["Track Name", "Artist Name", *FEATURE_NAMES])
        writer.writeheader()
        for row, title in zip(rows, [TITLES[0], ""], strict=True):
            writer.writerow({"Track Name": title, "Artist Name": "X", **row})
    code = client_main(
        [
            "--target",
            server_process.target,
            "features",
            "--model",
            "tiny-titled",
            "--json",
            str(path),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert "Artist Name" in err
    assert "Track Name" not in err  # used, not dropped
    answers = json.loads(out)["rows"]
    assert [[s["genre"] for s in row["scores"]] for row in answers] == [
        [genre for genre, _ in prediction] for prediction in titled.predictions
    ]
