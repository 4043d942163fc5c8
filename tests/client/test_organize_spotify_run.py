"""``organize-spotify`` runs against a fake features classifier: bulk calls, a bad row isolated
by the server's refusal, the per-genre URI CSVs and the report, and the guards around them."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from client.errors import GenreClientError
from client.organize.library import OrganizeError
from client.organize.spotify import SpotifyOptions, organize_spotify
from client.results import FeaturesResult, ModelInfo
from tests.client.test_organize_spotify import GOOD, SPOTIFY11_INPUTS, export

LABELS = ("Acoustic/Folk", "Pop", "Rock")
MODEL = ModelInfo(
    name="spotify11-mlp",
    version="3",
    kind="features",
    labels=LABELS,
    features=SPOTIFY11_INPUTS,
    metrics={},
    split_protocol="",
    is_default=True,
)


class FakeFeatures:
    """Answers by tempo: under 100 Acoustic/Folk, under 140 Pop, else Rock, with probability
    danceability, "uncertain" under 0.3 (a model's default threshold); refuses a batch holding a
    loudness over 0 dB as INVALID_ARGUMENT."""

    def __init__(self, model: ModelInfo = MODEL) -> None:
        self.batches: list[int] = []
        self.titles: list[str | None] = []
        self.model = model

    def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]:
        return [self.model]

    def classify_features(
        self,
        model: str,
        rows: Sequence[dict[str, float]],
        *,
        version: str = "",
        top_k: int = 0,
        min_probability: float | None = None,
        timeout: float | None = None,
        titles: Sequence[str] | None = None,
    ) -> FeaturesResult:
        assert (model, version) == ("spotify11-mlp", self.model.version)
        self.batches.append(len(rows))
        self.titles.extend(titles if titles is not None else [None] * len(rows))
        for number, row in enumerate(rows):
            if row["loudness"] > 0:
                raise GenreClientError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"rows[{number}].features: loudness too loud"
                )
        predictions = []
        for row in rows:
            genre = (
                LABELS[0] if row["tempo"] < 100 else LABELS[1] if row["tempo"] < 140 else LABELS[2]
            )
            rest = [(label, 0.0) for label in LABELS if label != genre]
            predictions.append([(genre, row["danceability"]), *rest])
        assert min_probability is None  # the client applies --min-probability itself
        abstentions = ["uncertain" if p[0][1] < 0.3 else "answered" for p in predictions]
        return FeaturesResult(model, version, predictions, abstentions)  # type: ignore[arg-type]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_run_classifies_in_batches_isolates_a_bad_row_and_writes_uri_csvs(tmp_path: Path) -> None:
    tracks = [
        {**GOOD, "Track URI": "spotify:track:slow", "Tempo": "80", "Danceability": "0.9"},
        {**GOOD, "Track URI": "spotify:track:mid", "Tempo": "120", "Danceability": "0.8"},
        {**GOOD, "Track URI": "spotify:track:loud", "Loudness": "3"},
        {**GOOD, "Track URI": "spotify:track:fast", "Tempo": "170", "Danceability": "0.7"},
        {**GOOD, "Track URI": "spotify:track:unsure", "Tempo": "170", "Danceability": "0.2"},
        {**GOOD, "Track URI": "spotify:track:mid", "Tempo": "120", "Danceability": "0.8"},
        {**GOOD, "Track URI": "spotify:track:broken", "Key": "H"},
    ]
    path = tmp_path / "export.csv"
    path.write_text(export(tracks), encoding="utf-8")
    out = tmp_path / "out"
    (out).mkdir()
    (out / "Bollywood.csv").write_text("Track URI\n")  # not a label of this model: kept
    (out / "Rock.csv").write_text("Track URI\nspotify:track:old\n")  # replaced
    fake = FakeFeatures()
    options = SpotifyOptions(path, out, min_probability=0.5, batch_size=4)
    summary, _ = organize_spotify(fake, options, progress=False)
    # 6 sendable rows in batches of 4 and 2; the refused batch is sent again row by row.
    assert fake.batches == [4, 1, 1, 1, 1, 2]
    assert sorted(p.name for p in out.iterdir()) == [
        "Acoustic-Folk.csv",
        "Bollywood.csv",
        "Pop.csv",
        "Rock.csv",
        "report.csv",
        "unsorted.csv",
    ]
    uris = {
        name: [r["Track URI"] for r in read_csv(out / name)]
        for name in ("Acoustic-Folk.csv", "Pop.csv", "Rock.csv", "unsorted.csv")
    }
    assert uris == {
        "Acoustic-Folk.csv": ["spotify:track:slow"],
        "Pop.csv": ["spotify:track:mid"],  # listed once though the export has it twice
        "Rock.csv": ["spotify:track:fast"],
        "unsorted.csv": ["spotify:track:unsure"],
    }
    report = read_csv(out / "report.csv")
    assert [r["line"] for r in report] == ["2", "3", "4", "5", "6", "7", "8"]
    errors = {r["uri"]: r["error"] for r in report if r["error"]}
    assert errors == {
        "spotify:track:loud": "features: loudness too loud",
        "spotify:track:broken": (
            "column 'Key': 'H' is not a pitch class (0-11, C=0, or a name like C# or Db)"
        ),
    }
    assert report[0]["genre"] == "Acoustic/Folk"
    assert report[0]["model"] == "spotify11-mlp"
    assert report[0]["version"] == "3"
    assert report[4]["abstention"] == "uncertain"
    assert summary.tracks == {"Acoustic/Folk": 1, "Pop": 2, "Rock": 1}
    assert (summary.below_min_probability, summary.abstained) == (1, 0)
    assert (summary.failed, summary.classified) == (2, 7)


def test_the_export_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "Pop.csv"
    path.write_text(export([{**GOOD, "Tempo": "120"}]), encoding="utf-8")
    with pytest.raises(OrganizeError, match="would be overwritten"):
        organize_spotify(FakeFeatures(), SpotifyOptions(path, tmp_path), progress=False)
    assert "Tempo" in path.read_text(encoding="utf-8")


def test_dry_run_classifies_nothing_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(export([GOOD, {**GOOD, "Key": "H"}]), encoding="utf-8")
    fake = FakeFeatures()
    summary, mapped = organize_spotify(
        fake, SpotifyOptions(path, tmp_path / "out", dry_run=True), progress=False
    )
    assert fake.batches == []
    assert not (tmp_path / "out").exists()
    assert summary.dry_run
    assert [bool(track.error) for track in mapped.tracks] == [False, True]


def test_the_model_must_be_a_served_features_model(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(export([GOOD]), encoding="utf-8")
    fake = FakeFeatures()
    with pytest.raises(
        OrganizeError, match=r"no model absent; served: spotify11-mlp:3 \(features\)"
    ):
        organize_spotify(fake, SpotifyOptions(path, tmp_path / "o", model="absent"), progress=False)
    audio = replace(MODEL, name="tagger", kind="audio")
    fake.list_models = lambda *, timeout=None: [MODEL, audio]  # type: ignore[method-assign]
    with pytest.raises(OrganizeError, match="tagger is an audio model; organize-spotify needs"):
        organize_spotify(fake, SpotifyOptions(path, tmp_path / "o", model="tagger"), progress=False)


def test_track_names_go_as_titles_to_a_model_that_takes_them(tmp_path: Path) -> None:
    """The export's Track Name is each row's title; a name over the model's limit is left out
    (the track is still answered); a model without titles gets none."""
    long_name = "x" * 31
    tracks = [
        {**GOOD, "Track URI": "spotify:track:a", "Track Name": "Hey Jude"},
        {**GOOD, "Track URI": "spotify:track:b", "Track Name": long_name},
    ]
    path = tmp_path / "export.csv"
    path.write_text(export(tracks), encoding="utf-8")
    titled = replace(MODEL, version="4", text_features={"title": 30})
    fake = FakeFeatures(titled)
    options = SpotifyOptions(path, tmp_path / "out")
    organize_spotify(fake, options, progress=False)
    assert fake.titles == ["Hey Jude", ""]
    report = read_csv(tmp_path / "out" / "report.csv")
    assert [row["error"] for row in report] == ["", ""]
    plain = FakeFeatures()
    organize_spotify(plain, replace(options, out_dir=tmp_path / "plain"), progress=False)
    assert plain.titles == [None, None]
