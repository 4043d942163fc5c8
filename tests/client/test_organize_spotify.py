"""``organize-spotify``: the export's column mapping and units (runs: test_organize_spotify_run)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

import pytest

from client.organize.library import OrganizeError
from client.organize.spotify_export import api_feature, map_export, model_feature_source
from client.results import FeatureInfo

SPOTIFY11_INPUTS = tuple(
    FeatureInfo(name, name in ("Popularity", "key", "instrumentalness"))
    for name in (
        "Popularity",
        "danceability",
        "energy",
        "key",
        "loudness",
        "mode",
        "speechiness",
        "acousticness",
        "instrumentalness",
        "liveness",
        "valence",
        "tempo",
        "duration_in min/ms",
        "time_signature",
    )
)
EXPORT_HEADER = [
    "Track URI",
    "Track Name",
    "Artist Name(s)",
    "Album Name",
    "Danceability",
    "Energy",
    "Key",
    "Loudness",
    "Mode",
    "Speechiness",
    "Acousticness",
    "Instrumentalness",
    "Liveness",
    "Valence",
    "Tempo",
    "Time Signature",
    "Duration (ms)",
    "Popularity",
]
GOOD = {
    "Track URI": "spotify:track:aaa",
    "Track Name": "Song",
    "Artist Name(s)": "Band",
    "Album Name": "Album",
    "Danceability": "0.5",
    "Energy": "0.7",
    "Key": "5",
    "Loudness": "-6.5",
    "Mode": "1",
    "Speechiness": "0.04",
    "Acousticness": "0.1",
    "Instrumentalness": "0.002",
    "Liveness": "0.12",
    "Valence": "0.6",
    "Tempo": "120.5",
    "Time Signature": "4",
    "Duration (ms)": "234596",
    "Popularity": "61",
}


def export(rows: Sequence[Mapping[str, str]], header: Sequence[str] = EXPORT_HEADER) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def mapped_row(cells: Mapping[str, str], header: Sequence[str] = EXPORT_HEADER) -> object:
    mapped = map_export(export([{**GOOD, **cells}], header), "e.csv", "m", SPOTIFY11_INPUTS)
    track = mapped.tracks[0]
    return track.error or track.features


def test_every_export_column_reaches_its_model_feature_in_the_model_s_units() -> None:
    mapped = map_export(export([GOOD]), "e.csv", "spotify11-mlp", SPOTIFY11_INPUTS)
    assert dict(mapped.columns) == {
        "Popularity": "Popularity",
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
        "Duration (ms)": "duration_in min/ms",
        "Time Signature": "time_signature",
    }
    (track,) = mapped.tracks
    assert (track.uri, track.name, track.artists, track.line) == (
        "spotify:track:aaa",
        "Song",
        "Band",
        2,
    )
    assert track.features == {
        "Popularity": 61.0,
        "danceability": 0.5,
        "energy": 0.7,
        "key": 5.0,
        "loudness": -6.5,
        "mode": 1.0,
        "speechiness": 0.04,
        "acousticness": 0.1,
        "instrumentalness": 0.002,
        "liveness": 0.12,
        "valence": 0.6,
        "tempo": 120.5,
        "duration_in min/ms": 234596.0,  # milliseconds, as the model takes them
        "time_signature": 4.0,
    }


@pytest.mark.parametrize(
    ("header", "feature"),
    [
        ("Time Signature", "time_signature"),
        ("time_signature", "time_signature"),
        ("  DURATION (MS) ", "duration_ms"),
        ("duration_ms", "duration_ms"),
        ("popularity", "popularity"),
        ("Album Name", None),
    ],
)
def test_headers_match_ignoring_case_spacing_and_snake_case(
    header: str, feature: str | None
) -> None:
    assert api_feature(header) == feature


def test_model_names_map_to_api_features() -> None:
    assert model_feature_source("duration_in min/ms") == "duration_ms"
    assert model_feature_source("Popularity") == "popularity"


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"Key": "C#"}, {"key": 1.0}),
        ({"Key": "Db"}, {"key": 1.0}),
        ({"Key": "B♭"}, {"key": 10.0}),
        ({"Key": "Am"}, {"key": 9.0}),
        ({"Key": "G major"}, {"key": 7.0}),
        ({"Mode": "Minor"}, {"mode": 0.0}),
        ({"Time Signature": "3/4"}, {"time_signature": 3.0}),
    ],
)
def test_names_and_words_read_as_numbers(cells: dict[str, str], expected: dict[str, float]) -> None:
    features = mapped_row(cells)
    assert isinstance(features, dict)
    assert {name: features[name] for name in expected} == expected


@pytest.mark.parametrize(
    ("cells", "left_out"),
    [
        ({"Key": "0"}, "key"),  # C: training rows hold no key 0; their blanks are C
        ({"Key": "-1"}, "key"),  # Spotify's "no key detected"
        ({"Key": ""}, "key"),
        ({"Popularity": "0"}, "Popularity"),
        ({"Instrumentalness": "0"}, "instrumentalness"),
        ({"Instrumentalness": "0.0"}, "instrumentalness"),
    ],
)
def test_zero_and_unknown_in_imputable_columns_are_left_to_the_server(
    cells: dict[str, str], left_out: str
) -> None:
    features = mapped_row(cells)
    assert isinstance(features, dict)
    assert left_out not in features
    assert len(features) == len(SPOTIFY11_INPUTS) - 1


def test_zero_stays_a_value_where_the_model_cannot_impute() -> None:
    inputs = tuple(FeatureInfo(info.name, False) for info in SPOTIFY11_INPUTS)
    mapped = map_export(export([{**GOOD, "Key": "0", "Mode": "0"}]), "e.csv", "m", inputs)
    assert mapped.tracks[0].features["key"] == 0.0
    assert mapped.tracks[0].features["mode"] == 0.0
    unknown = map_export(export([{**GOOD, "Key": "-1"}]), "e.csv", "m", inputs)
    assert unknown.tracks[0].error == "column 'Key' is '-1' (unknown) and m cannot impute 'key'"


@pytest.mark.parametrize(
    ("cells", "error"),
    [
        ({"Tempo": ""}, "column 'Tempo' is empty and m cannot impute 'tempo'"),
        ({"Tempo": "fast"}, "column 'Tempo': 'fast' is not a number"),
        (
            {"Key": "H"},
            "column 'Key': 'H' is not a pitch class (0-11, C=0, or a name like C# or Db)",
        ),
        ({"Key": "12"}, "column 'Key': '12' is not a pitch class"),
        ({"Mode": "2"}, "column 'Mode': '2' is not a mode (1 major, 0 minor)"),
        ({"Duration (ms)": "3.9"}, "column 'Duration (ms)': '3.9' ms is under 100 ms"),
        ({"Loudness": "nan"}, "column 'Loudness': 'nan' is not finite"),
        ({"Track URI": ""}, "no Track URI"),
    ],
)
def test_bad_cells_fail_their_row_with_a_precise_reason(cells: dict[str, str], error: str) -> None:
    reason = mapped_row(cells)
    assert isinstance(reason, str)
    assert reason.startswith(error)


def test_a_fraction_past_1_in_a_fraction_column_fails_its_row() -> None:
    rows = [{**GOOD, "Danceability": "1.5"}, GOOD, GOOD]
    mapped = map_export(export(rows), "e.csv", "m", SPOTIFY11_INPUTS)
    assert mapped.notes == []
    assert mapped.tracks[0].error == "column 'Danceability': '1.5' is outside 0-1 (a fraction)"
    assert not mapped.tracks[1].error


def test_a_local_file_without_features_fails_its_row_only() -> None:
    local = dict.fromkeys(EXPORT_HEADER, "") | {
        "Track URI": "spotify:local:x",
        "Track Name": "L",
    }
    mapped = map_export(export([GOOD, local]), "e.csv", "m", SPOTIFY11_INPUTS)
    assert not mapped.tracks[0].error
    assert mapped.tracks[1].error.startswith("no audio features")


def test_percent_columns_are_read_as_fractions() -> None:
    rows = [
        {**GOOD, "Danceability": "85", "Energy": "0.5"},
        {**GOOD, "Danceability": "0.5"},
        {**GOOD, "Danceability": "40"},
    ]
    mapped = map_export(export(rows), "e.csv", "m", SPOTIFY11_INPUTS)
    assert mapped.notes == ["Danceability holds mostly values past 1: read as percent"]
    assert [t.features["danceability"] for t in mapped.tracks] == [0.85, 0.005, 0.4]
    assert [t.features["energy"] for t in mapped.tracks] == [0.5, 0.7, 0.7]


def test_missing_imputable_columns_are_allowed_and_named() -> None:
    header = [h for h in EXPORT_HEADER if h not in ("Popularity", "Key")]
    mapped = map_export(export([GOOD], header), "e.csv", "m", SPOTIFY11_INPUTS)
    assert mapped.omitted == ["Popularity", "key"]
    assert set(mapped.tracks[0].features) == {i.name for i in SPOTIFY11_INPUTS} - {
        "Popularity",
        "key",
    }


def test_a_missing_column_the_model_needs_is_an_error_naming_it() -> None:
    header = [h for h in EXPORT_HEADER if h != "Tempo"]
    with pytest.raises(
        OrganizeError,
        match=r"e.csv: no column 'Tempo' \(the model's 'tempo'\), which m cannot impute",
    ):
        map_export(export([GOOD], header), "e.csv", "m", SPOTIFY11_INPUTS)


def test_no_uri_column_is_an_error_but_a_track_id_column_makes_uris() -> None:
    header = [h for h in EXPORT_HEADER if h != "Track URI"]
    with pytest.raises(OrganizeError, match="no 'Track URI' column"):
        map_export(export([GOOD], header), "e.csv", "m", SPOTIFY11_INPUTS)
    with_ids = export([{**GOOD, "Track ID": "4uLU6hMCjMI75M1A2tKUQC"}], ["Track ID", *header])
    mapped = map_export(with_ids, "e.csv", "m", SPOTIFY11_INPUTS)
    assert mapped.tracks[0].uri == "spotify:track:4uLU6hMCjMI75M1A2tKUQC"


def test_a_model_of_other_features_is_refused() -> None:
    inputs = (FeatureInfo("mfcc1_mean", False),)
    with pytest.raises(
        OrganizeError, match="takes 'mfcc1_mean', which no Spotify export column carries"
    ):
        map_export(export([GOOD]), "e.csv", "gtzan-features-mlp", inputs)
