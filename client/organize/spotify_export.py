"""Maps a Spotify playlist export's audio-feature columns to a features model's inputs.

The common export format (Exportify's, and tools that copy it) has one row per track with
``Track URI``, ``Track Name``, ``Artist Name(s)`` and Spotify's audio features under
capitalised names. Each column is matched to a Spotify API feature (case and spacing ignored;
the API's snake_case names are accepted too), and the API feature to the model's input by name
(``spotify11-mlp`` spells duration ``duration_in min/ms`` and popularity ``Popularity``).

Units, as Spotify's Web API gives them and as the model was trained on (``spotify_11class``):

============================  ====================================  ==============================
export column                 model feature (spotify11-mlp)         unit / values
============================  ====================================  ==============================
Danceability, Energy,         danceability, energy, speechiness,    fraction 0-1 (a column holding
Speechiness, Acousticness,    acousticness, instrumentalness,       mostly values past 1, none past
Instrumentalness, Liveness,   liveness, valence                     100, is read as percent)
Valence
Loudness                      loudness                              dB, as given (negative)
Tempo                         tempo                                 beats per minute, as given
Key                           key                                   pitch class 0-11 (C=0), or a
                                                                    name (C#, Db, ...); -1 (no key
                                                                    detected) is omitted
Mode                          mode                                  1 major, 0 minor (or the words)
Time Signature                time_signature                        beats per bar (3 = 3/4); "4/4"
                                                                    reads as 4
Duration (ms)                 duration_in min/ms                    milliseconds, sent as they are:
                                                                    the model's preprocessing reads
                                                                    values under 100 as minutes
                                                                    (x 60,000), so shorter ones are
                                                                    refused here
Popularity                    Popularity                            0-100, as given
============================  ====================================  ==============================

Zero in Key, Popularity or Instrumentalness is sent as *omitted* (the server imputes it) when the
model can impute that feature: the training rows never hold a zero there, and their blank cells
sit where Spotify says 0 (blank keys are 11% of rows, C's share of songs, and no row has key 0;
popularity starts at 1, 2.4% blank; instrumentalness, which Spotify gives as exactly 0 for many
songs, is never 0 and blank on 24%). Sending the zero would show the model a value it never saw;
omitting it shows what training showed. An export without an imputable column (e.g. no
``Popularity``) is fine for the same reason; a missing column the model cannot impute is an error
naming it.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from client.organize.library import OrganizeError
from client.results import FeatureInfo

FRACTIONS = (
    "danceability",
    "energy",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
)
EXPORT_HEADERS: Mapping[str, str] = {
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
    "Duration (ms)": "duration_ms",
    "Popularity": "popularity",
}
"""The common export's header -> the Spotify API's feature name."""
MODEL_ALIASES: Mapping[str, str] = {"duration_in min/ms": "duration_ms"}
"""Model input names (lower-cased) that differ from the API's."""
ZERO_MEANS_MISSING = frozenset({"key", "popularity", "instrumentalness"})
URI_HEADERS = ("track uri", "uri", "spotify uri", "track_uri")
ID_HEADERS = ("track id", "spotify id", "track_id", "id")
NAME_HEADERS = ("track name", "name", "track_name", "title")
ARTIST_HEADERS = ("artist name(s)", "artist names", "artist name", "artists", "artist")
PITCH_CLASSES = {
    "c": 0, "b#": 0, "c#": 1, "db": 1, "d": 2, "d#": 3, "eb": 3, "e": 4, "fb": 4, "f": 5,
    "e#": 5, "f#": 6, "gb": 6, "g": 7, "g#": 8, "ab": 8, "a": 9, "a#": 10, "bb": 10, "b": 11,
    "cb": 11,
}  # fmt: skip
MIN_DURATION_MS = 100.0


def _key(header: str) -> str:
    return re.sub(r"[\s_]+", " ", header.strip().lower())


def api_feature(header: str) -> str | None:
    """The API feature an export column carries: ``Time Signature``, ``time_signature`` and
    ``time signature`` all give ``time_signature``; ``None`` for other columns."""
    wanted = _key(header)
    for export, feature in EXPORT_HEADERS.items():
        if wanted in (_key(export), _key(feature)):
            return feature
    return None


def model_feature_source(name: str) -> str:
    """The API feature a model input takes (``duration_in min/ms`` -> ``duration_ms``)."""
    lowered = name.strip().lower()
    return MODEL_ALIASES.get(lowered, lowered)


@dataclass(frozen=True)
class ExportTrack:
    """One export row: the model's inputs (omitted ones absent), or why the row cannot be sent."""

    line: int
    uri: str
    name: str
    artists: str
    features: dict[str, float] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class MappedExport:
    """``columns``: (export column, model feature) pairs used; ``omitted``: imputable model
    features the export has no column for; ``notes``: unit decisions worth telling the user."""

    tracks: list[ExportTrack]
    columns: list[tuple[str, str]]
    omitted: list[str]
    notes: list[str]


class _CellError(ValueError):
    pass


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _CellError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise _CellError(f"{text!r} is not finite")
    return value


def _key_value(text: str) -> float | None:
    name = text.strip().lower().replace("♯", "#").replace("♭", "b")
    for suffix in ("major", "minor", "maj", "min", "m"):
        if name.endswith(suffix) and name.removesuffix(suffix).strip() in PITCH_CLASSES:
            name = name.removesuffix(suffix).strip()
            break
    if name in PITCH_CLASSES:
        return float(PITCH_CLASSES[name])
    try:
        value = _number(text)
    except _CellError:
        raise _CellError(
            f"{text!r} is not a pitch class (0-11, C=0, or a name like C# or Db)"
        ) from None
    if value == -1:
        return None
    if value != int(value) or not 0 <= value <= 11:
        raise _CellError(
            f"{text!r} is not a pitch class (0-11, C=0, or a name like C# or Db)"
        ) from None
    return value


def _mode_value(text: str) -> float:
    word = text.strip().lower()
    if word in ("major", "maj"):
        return 1.0
    if word in ("minor", "min"):
        return 0.0
    value = _number(text)
    if value not in (0.0, 1.0):
        raise _CellError(f"{text!r} is not a mode (1 major, 0 minor)")
    return value


def _time_signature_value(text: str) -> float:
    beats = text.split("/")[0] if "/" in text else text
    value = _number(beats)
    if value != int(value) or not 0 <= value <= 16:
        raise _CellError(f"{text!r} is not beats per bar (3 = 3/4, 4 = 4/4)")
    return value


def _duration_value(text: str) -> float:
    value = _number(text)
    if value < MIN_DURATION_MS:
        raise _CellError(
            f"{text!r} ms is under {MIN_DURATION_MS:g} ms, which the model would read as "
            "minutes; give milliseconds"
        )
    return value


def _range(low: float, high: float, unit: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text)
        if not low <= value <= high:
            raise _CellError(f"{text!r} is outside {low:g}-{high:g} {unit}".rstrip())
        return value

    return parse


PARSERS: Mapping[str, Callable[[str], float | None]] = {
    "key": _key_value,
    "mode": _mode_value,
    "time_signature": _time_signature_value,
    "duration_ms": _duration_value,
    "popularity": _range(0, 100, ""),
    "tempo": _range(0, 1000, "beats per minute"),
    "loudness": _range(-100, 20, "dB"),
    **{feature: _range(0, 1, "(a fraction)") for feature in FRACTIONS},
}


def _find(headers: Sequence[str], names: Sequence[str]) -> str | None:
    by_key = {_key(header): header for header in headers}
    return next((by_key[_key(name)] for name in names if _key(name) in by_key), None)


def _percent_columns(rows: Sequence[Mapping[str, str]], columns: Mapping[str, str]) -> list[str]:
    """Fraction columns written as percent: most values past 1, none past 100 (a fraction
    column with a stray bad value stays a fraction column, and that row fails)."""
    found = []
    for header, feature in columns.items():
        if feature not in FRACTIONS:
            continue
        values = []
        for row in rows:
            try:
                values.append(_number(row.get(header) or ""))
            except _CellError:
                continue
        past_one = sum(value > 1 for value in values)
        if past_one * 2 > len(values) and max(values) <= 100 and min(values) >= 0:
            found.append(header)
    return found


def map_export(text: str, source: str, model: str, inputs: Sequence[FeatureInfo]) -> MappedExport:
    """Reads the export ``text`` (named ``source`` in messages) into rows for ``model``."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    headers = list(reader.fieldnames or [])
    if not headers:
        raise OrganizeError(f"{source}: no header line")
    uri_header = _find(headers, URI_HEADERS)
    id_header = None if uri_header else _find(headers, ID_HEADERS)
    if uri_header is None and id_header is None:
        raise OrganizeError(
            f"{source}: no 'Track URI' column (or track ID column); the per-genre CSVs are lists "
            f"of track URIs. Columns: {', '.join(headers)}"
        )
    by_feature = {feature: header for header in headers if (feature := api_feature(header))}
    columns: dict[str, str] = {}
    omitted: list[str] = []
    for info in inputs:
        source_feature = model_feature_source(info.name)
        if source_feature not in PARSERS:
            raise OrganizeError(
                f"{model} takes {info.name!r}, which no Spotify export column carries; "
                "organize-spotify serves models of Spotify's audio features"
            )
        header = by_feature.get(source_feature)
        if header is not None:
            columns[header] = info.name
        elif info.imputable:
            omitted.append(info.name)
        else:
            wanted = next(h for h, f in EXPORT_HEADERS.items() if f == source_feature)
            raise OrganizeError(
                f"{source}: no column {wanted!r} (the model's {info.name!r}), which {model} "
                f"cannot impute; columns: {', '.join(headers)}"
            )
    imputable = {info.name for info in inputs if info.imputable}
    records = list(reader)
    percent = _percent_columns(records, {h: model_feature_source(f) for h, f in columns.items()})
    notes = [f"{header} holds mostly values past 1: read as percent" for header in percent]
    name_header = _find(headers, NAME_HEADERS)
    artist_header = _find(headers, ARTIST_HEADERS)
    tracks = []
    for line, record in enumerate(records, start=2):
        if None in record:
            raise OrganizeError(f"{source}, line {line}: more cells than the header has columns")
        cells = {header: (value or "").strip() for header, value in record.items()}
        uri = cells.get(uri_header, "") if uri_header else ""
        if id_header and cells.get(id_header):
            uri = f"spotify:track:{cells[id_header]}"
        track = ExportTrack(
            line=line,
            uri=uri,
            name=cells.get(name_header, "") if name_header else "",
            artists=cells.get(artist_header, "") if artist_header else "",
        )
        tracks.append(_with_features(track, cells, columns, percent, imputable, model))
    return MappedExport(tracks, list(columns.items()), omitted, notes)


def _with_features(
    track: ExportTrack,
    cells: Mapping[str, str],
    columns: Mapping[str, str],
    percent: Sequence[str],
    imputable: set[str],
    model: str,
) -> ExportTrack:
    if not track.uri:
        return replace(track, error="no Track URI")
    if columns and not any(cells.get(header) for header in columns):
        error = "no audio features (Spotify gives none for local files and podcast episodes)"
        return replace(track, error=error)
    features: dict[str, float] = {}
    for header, feature in columns.items():
        text = cells.get(header, "")
        source_feature = model_feature_source(feature)
        try:
            value = _parse(source_feature, text, header in percent)
        except _CellError as cell:
            return replace(track, error=f"column {header!r}: {cell}")
        if value is None or (value == 0 and source_feature in ZERO_MEANS_MISSING):
            if feature in imputable:
                continue
            if value is None:
                what = "empty" if not text else f"{text!r} (unknown)"
                error = f"column {header!r} is {what} and {model} cannot impute {feature!r}"
                return replace(track, error=error)
        features[feature] = value
    return replace(track, features=features)


def _parse(feature: str, text: str, percent: bool) -> float | None:
    """The value to send, ``None`` for an empty or "unknown" cell (key -1)."""
    if not text:
        return None
    return PARSERS[feature](str(_number(text) / 100) if percent else text)
