"""``genre-client`` end to end against the scripted server, output parsed back."""

from __future__ import annotations

import io
import json
from pathlib import Path

import grpc
import numpy as np
import pytest

from client.cli import main
from client.formatting import version_order
from genre.v1 import genre_pb2
from tests.client.scripted import ScriptedServicer, expected_scores

GTZAN_CSV = (
    "filename,length,tempo,rms_mean,chroma_stft_mean,label\n"
    "a.wav,661794,1,0.5,0.5,blues\n"
    "b.wav,661794,2,,,jazz\n"
)


def run(capsys: pytest.CaptureFixture[str], grpc_addr: str, *args: str) -> tuple[int, str, str]:
    code = main(["--target", grpc_addr, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_models_table_and_json(
    capsys: pytest.CaptureFixture[str], grpc_addr: str, servicer: ScriptedServicer
) -> None:
    code, table, _ = run(capsys, grpc_addr, "models")
    assert code == 0
    header, *lines = table.splitlines()
    assert header.split() == ["MODEL", "VERSION", "KIND", "DEFAULT", "METRICS"]
    default_mlp = ["gtzan-mlp", "2", "features", "yes", "accuracy=0.750", "macro_f1=0.700"]
    assert lines[2].split() == default_mlp

    code, out, _ = run(capsys, grpc_addr, "models", "--json")
    models = json.loads(out)
    assert code == 0
    assert [(m["name"], m["version"], m["kind"]) for m in models] == [
        ("gtzan-mlp", "1", "features"),
        ("gtzan-mlp", "2", "features"),
        ("gtzan-cnn", "1", "audio"),
    ]
    assert models[1]["features"][0] == {"name": "tempo", "imputable": False}


def test_features_from_csv_drops_extra_columns_and_omits_empty_cells(
    capsys: pytest.CaptureFixture[str],
    grpc_addr: str,
    servicer: ScriptedServicer,
    tmp_path: Path,
) -> None:
    path = tmp_path / "gtzan.csv"
    path.write_text(GTZAN_CSV)

    code, out, err = run(capsys, grpc_addr, "features", "--model", "gtzan-mlp", "--json", str(path))

    assert code == 0
    (request,) = servicer.feature_requests
    assert request.model.version == "2"  # pinned to the listed default
    assert [dict(r.features) for r in request.rows] == [
        {"tempo": 1.0, "rms_mean": 0.5, "chroma_stft_mean": 0.5},
        {"tempo": 2.0},
    ]
    assert err.count("note:") == 1
    assert "filename, length, label" in err
    answer = json.loads(out)
    assert (answer["model"], answer["version"]) == ("gtzan-mlp", "2")
    assert [row["genre"] for row in answer["rows"]] == [
        expected_scores([2.0])[0][0],
        expected_scores([2.0])[0][0],
    ]
    assert [s["genre"] for s in answer["rows"][1]["scores"]] == [
        g for g, _ in expected_scores([2.0])
    ]


def test_features_from_json_on_stdin_in_batches(
    capsys: pytest.CaptureFixture[str],
    grpc_addr: str,
    servicer: ScriptedServicer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [{"tempo": float(n), "Artist Name": "X", "Class": 3} for n in range(5)]
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"rows": rows})))

    code, out, err = run(
        capsys,
        grpc_addr,
        "features",
        "--model",
        "gtzan-mlp",
        "--version",
        "1",
        "--batch-size",
        "2",
        "--top-k",
        "2",
        "--json",
        "-",
    )

    assert code == 0
    assert [len(r.rows) for r in servicer.feature_requests] == [2, 2, 1]
    assert {r.model.version for r in servicer.feature_requests} == {"1"}
    answer = json.loads(out)
    assert [r["row"] for r in answer["rows"]] == [1, 2, 3, 4, 5]
    assert [r["genre"] for r in answer["rows"]] == [expected_scores([n])[0][0] for n in range(5)]
    assert all(len(r["scores"]) == 2 for r in answer["rows"])
    assert "Artist Name, Class" in err


def test_features_table(
    capsys: pytest.CaptureFixture[str], grpc_addr: str, servicer: ScriptedServicer, tmp_path: Path
) -> None:
    path = tmp_path / "rows.json"
    path.write_text('[{"tempo": 3}]')

    code, out, _ = run(capsys, grpc_addr, "features", "--model", "gtzan-mlp", str(path))

    genre, probability = expected_scores([3])[0]
    header, line = out.splitlines()
    assert header.split()[:3] == ["ROW", "GENRE", "PROBABILITY"]
    assert line.split()[:3] == ["1", genre, f"{probability:.3f}"]
    assert code == 0


def test_rpc_error_exits_1_with_status_and_details(
    capsys: pytest.CaptureFixture[str], grpc_addr: str, servicer: ScriptedServicer, tmp_path: Path
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("rms_mean\n0.1\n")
    servicer.fail("ClassifyFeatures", grpc.StatusCode.INVALID_ARGUMENT, "row 0: tempo is required")

    code, out, err = run(capsys, grpc_addr, "features", "--model", "gtzan-mlp", str(path))

    assert code == 1
    assert out == ""
    assert "error: INVALID_ARGUMENT: row 0: tempo is required" in err


@pytest.mark.parametrize(
    ("model", "message"), [("nope", "lists no model nope"), ("gtzan-cnn", "audio model")]
)
def test_models_the_server_does_not_list_for_features_exit_2(
    capsys: pytest.CaptureFixture[str],
    grpc_addr: str,
    servicer: ScriptedServicer,
    tmp_path: Path,
    model: str,
    message: str,
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("tempo\n1\n")

    code, _, err = run(capsys, grpc_addr, "features", "--model", model, str(path))

    assert code == 2
    assert message in err
    assert servicer.calls["ClassifyFeatures"] == 0


@pytest.mark.parametrize(("flags", "connections"), [([], 1), (["--connections", "3"], 3)])
def test_connections_flag_spreads_the_calls_over_connections(
    capsys: pytest.CaptureFixture[str],
    grpc_addr: str,
    servicer: ScriptedServicer,
    tmp_path: Path,
    flags: list[str],
    connections: int,
) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"tempo": n} for n in range(3)]))

    code, _, _ = run(
        capsys,
        grpc_addr,
        *flags,
        "features",
        "--model",
        "gtzan-mlp",
        "--batch-size",
        "1",
        str(path),
    )

    assert code == 0
    assert len(servicer.peers) == 4  # ListModels, then one call per row
    assert len(set(servicer.peers)) == connections


def test_fewer_than_one_connection_exits_2(
    capsys: pytest.CaptureFixture[str], grpc_addr: str, servicer: ScriptedServicer
) -> None:
    code, out, err = run(capsys, grpc_addr, "--connections", "0", "models")

    assert code == 2
    assert out == ""
    assert "connections must be >= 1" in err
    assert not servicer.peers


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["features", "rows.csv"])
    assert raised.value.code == 2
    assert "--model" in capsys.readouterr().err


def test_stream_raw_pcm_from_stdin(
    capsys: pytest.CaptureFixture[str],
    grpc_addr: str,
    servicer: ScriptedServicer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pcm = np.arange(4000, dtype="<i2").tobytes()  # 0.5 s at 8 kHz, mono s16le
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(pcm)))

    code, out, _ = run(
        capsys,
        grpc_addr,
        "stream",
        "-",
        "--model",
        "gtzan-cnn",
        "--rate",
        "8000",
        "--chunk-ms",
        "100",
    )

    assert code == 0
    config, *audio = servicer.stream_requests
    assert (config.config.sample_rate, config.config.encoding) == (8000, genre_pb2.PCM_S16LE)
    assert [len(r.audio.data) for r in audio] == [1600] * 5
    assert b"".join(r.audio.data for r in audio) == pcm
    lines = out.splitlines()
    assert len(lines) == 6
    assert lines[-1].startswith("final")


def test_stream_decodes_a_file_and_sends_f32le(
    capsys: pytest.CaptureFixture[str],
    grpc_addr: str,
    servicer: ScriptedServicer,
    tmp_path: Path,
) -> None:
    soundfile = pytest.importorskip("soundfile")
    samples = np.linspace(-1, 1, 2 * 4000, dtype=np.float32).reshape(4000, 2)
    path = tmp_path / "clip.wav"
    soundfile.write(path, samples, 16000, subtype="FLOAT")

    code, out, _ = run(capsys, grpc_addr, "stream", str(path), "--model", "gtzan-cnn", "--json")

    assert code == 0
    config, *audio = servicer.stream_requests
    assert (config.config.sample_rate, config.config.channels) == (16000, 2)
    assert config.config.encoding == genre_pb2.PCM_F32LE
    sent = np.frombuffer(b"".join(r.audio.data for r in audio), dtype="<f4").reshape(-1, 2)
    np.testing.assert_array_equal(sent, samples)
    updates = [json.loads(line) for line in out.splitlines()]
    assert updates[-1]["final"] is True
    assert updates[0]["window"][0]["genre"] == expected_scores([1])[0][0]


def test_versions_sort_numerically_in_the_models_table() -> None:
    assert sorted(["10", "2", "b", "1", "a"], key=version_order) == ["1", "2", "10", "a", "b"]
