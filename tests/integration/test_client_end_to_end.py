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
from tests.support.checkpoints import FEATURE_NAMES, LABELS, example_row, write_tiny_model
from tests.support.harness import start_server_process


@pytest.fixture(scope="module")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    repository = tmp_path_factory.mktemp("client-e2e") / "models"
    write_tiny_model(repository, "tiny-mlp", seed=1)
    process = start_server_process(repository, {"GENRE_TORCH_THREADS": "1"})
    yield process
    process.stop()


def test_sync_client_lists_and_classifies(server_process: ServerProcess) -> None:
    with GenreClient(server_process.target) as client:
        [info] = client.list_models()
        assert (info.name, info.version, info.kind) == ("tiny-mlp", "1", "features")
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
