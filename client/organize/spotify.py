"""``genre-client organize-spotify``: sort a Spotify playlist export into per-genre CSVs of track
URIs, through ``ClassifyFeatures``.

Reads the export (its columns mapped as :mod:`client.organize.spotify_export` documents),
classifies the
rows in batches against one pinned model version, and writes into ``OUT_DIR``: ``<genre>.csv``
(``Track URI, Track Name, Artist Name(s)``, ready for an import tool), ``unsorted.csv`` and
``report.csv`` (one line per export row, with its answer or why it could not be sent). A bad
row never stops the run: a batch the server refuses as INVALID_ARGUMENT is sent again row by row
so only the rows at fault fail, each with the server's message.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import grpc

from client.errors import GenreClientError
from client.organize.folder import resolve_model
from client.organize.library import REPORT_NAME, OrganizeError
from client.organize.placement import Summary, check_min_probability, place
from client.organize.playlists import (
    UNSORTED,
    SpotifyTrack,
    file_stem,
    remove_stale,
    spotify_csv_text,
    write_atomic,
)
from client.organize.progress import ProgressBar
from client.organize.spotify_export import ExportTrack, MappedExport, map_export
from client.results import FeaturesResult, ModelInfo

DEFAULT_MODEL = "spotify11-mlp"
SPOTIFY_REPORT_COLUMNS = (
    "line",
    "uri",
    "name",
    "artists",
    "genre",
    "probability",
    "abstention",
    "model",
    "version",
    "error",
)
INTERRUPTED_EXIT = 130


class FeaturesClassifier(Protocol):
    """What this command needs of :class:`client.client.GenreClient`."""

    def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]: ...

    def classify_features(
        self,
        model: str,
        rows: Sequence[dict[str, float]],
        *,
        version: str = "",
        top_k: int = 0,
        timeout: float | None = None,
        titles: Sequence[str] | None = None,
    ) -> FeaturesResult: ...


@dataclass(frozen=True)
class SpotifyOptions:
    export: Path
    out_dir: Path
    model: str = DEFAULT_MODEL
    version: str = ""
    min_probability: float | None = None
    batch_size: int = 256
    dry_run: bool = False
    timeout: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 4096:
            raise OrganizeError(
                f"--batch-size must be 1-4096 (the server's limit), got {self.batch_size}"
            )
        check_min_probability(self.min_probability)


@dataclass(frozen=True)
class SpotifyRow:
    """One export row's line of ``report.csv``."""

    track: ExportTrack
    genre: str = ""
    probability: float | None = None
    abstention: str = ""
    model: str = ""
    version: str = ""
    error: str = ""

    def cells(self) -> list[str]:
        probability = "" if self.probability is None else f"{self.probability:.6f}"
        track = self.track
        return [
            str(track.line),
            track.uri,
            track.name,
            track.artists,
            self.genre,
            probability,
            self.abstention,
            self.model,
            self.version,
            self.error,
        ]


def resolve_features_model(models: Sequence[ModelInfo], name: str, version: str) -> ModelInfo:
    use_instead = "organize-spotify needs a features model (organize streams audio)"
    return resolve_model(models, name, version, "features", use_instead)


def read_export(options: SpotifyOptions, info: ModelInfo) -> MappedExport:
    try:
        text = options.export.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise OrganizeError(f"cannot read {options.export}: {error}") from error
    return map_export(text, str(options.export), info.name, info.features)


def classify_tracks(
    client: FeaturesClassifier,
    info: ModelInfo,
    tracks: Sequence[ExportTrack],
    options: SpotifyOptions,
    done: list[SpotifyRow | None],
    bar: ProgressBar,
) -> None:
    """Fills ``done`` (one slot per track, in export order) batch by batch, so that a Ctrl-C
    leaves every finished batch in it; rows the export already ruled out are filled first."""
    for index, track in enumerate(tracks):
        if track.error:
            done[index] = SpotifyRow(
                track, model=info.name, version=info.version, error=track.error
            )
    bar.advance(sum(row is not None for row in done))
    sendable = [index for index, track in enumerate(tracks) if not track.error]
    for start in range(0, len(sendable), options.batch_size):
        batch = sendable[start : start + options.batch_size]
        answers = _answer(client, info, [tracks[index] for index in batch], options)
        for index, row in zip(batch, answers, strict=True):
            done[index] = row
        bar.advance(len(batch))


def _answer(
    client: FeaturesClassifier,
    info: ModelInfo,
    tracks: Sequence[ExportTrack],
    options: SpotifyOptions,
) -> list[SpotifyRow]:
    """One call for the batch; if the server refuses it as INVALID_ARGUMENT, one call per row,
    so the rows at fault carry the server's message and the rest are answered. Track names go
    as titles to a model that takes them."""
    try:
        result = client.classify_features(
            info.name,
            [track.features for track in tracks],
            version=info.version,
            timeout=options.timeout,
            titles=titles_for(info, tracks),
        )
    except GenreClientError as error:
        if error.code != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        if len(tracks) == 1:
            message = error.details.removeprefix("rows[0].")
            return [SpotifyRow(tracks[0], model=info.name, version=info.version, error=message)]
        return [row for track in tracks for row in _answer(client, info, [track], options)]
    abstentions = result.abstentions or ["answered"] * len(tracks)
    return [
        SpotifyRow(
            track,
            genre=scores[0][0],
            probability=scores[0][1],
            abstention=abstention,
            model=result.model or info.name,
            version=result.version or info.version,
        )
        for track, scores, abstention in zip(tracks, result.predictions, abstentions, strict=True)
    ]


def titles_for(info: ModelInfo, tracks: Sequence[ExportTrack]) -> list[str] | None:
    """The tracks' names as titles, for a model that takes them; a name longer than the model
    takes is left out (the track is still answered, from its features)."""
    if not info.takes_titles:
        return None
    limit = info.text_features["title"]
    return [track.name if len(track.name.strip()) <= limit else "" for track in tracks]


def write_outputs(
    options: SpotifyOptions, rows: Sequence[SpotifyRow], labels: Sequence[str]
) -> list[Path]:
    """A CSV per genre and ``unsorted.csv`` (tracks listed once each, first row wins), the
    report, and stale genre CSVs of ``labels`` removed."""
    out_dir = options.out_dir
    lists: dict[str, dict[str, SpotifyTrack]] = {}
    for row in rows:
        playlist, _ = place(row, options.min_probability)
        if playlist is not None:
            track = SpotifyTrack(row.track.uri, row.track.name, row.track.artists)
            lists.setdefault(playlist, {}).setdefault(track.uri, track)
    targets = {
        (UNSORTED if name == UNSORTED else file_stem(name)): tracks
        for name, tracks in lists.items()
    }
    written = [out_dir / f"{stem}.csv" for stem in sorted(targets)]
    report = out_dir / REPORT_NAME
    export = options.export.resolve()
    if export in {path.resolve() for path in [*written, report]}:
        raise OrganizeError(f"{options.export} would be overwritten; choose another --out")
    for path in written:
        write_atomic(path, spotify_csv_text(targets[path.stem].values()))
    write_atomic(report, _report_text(rows))
    stale = [out_dir / f"{file_stem(label)}.csv" for label in labels]
    stale.append(out_dir / f"{UNSORTED}.csv")
    remove_stale(out_dir, written, [path for path in stale if path.resolve() != export])
    return [*written, report]


def _report_text(rows: Sequence[SpotifyRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SPOTIFY_REPORT_COLUMNS)
    writer.writerows(row.cells() for row in rows)
    return buffer.getvalue()


def organize_spotify(
    client: FeaturesClassifier, options: SpotifyOptions, progress: bool | None = None
) -> tuple[Summary, MappedExport]:
    """Runs ``options``; Ctrl-C stops it and writes the outputs of the batches done."""
    started = time.monotonic()
    models = client.list_models(timeout=options.timeout)
    info = resolve_features_model(models, options.model, options.version)
    mapped = read_export(options, info)
    if info.takes_titles:
        mapped.notes.append(
            f"track names are sent as titles (those over {info.text_features['title']} "
            "characters are not: such a track gets the answer of its features alone)"
        )
    if options.dry_run:
        return _summary(options, info, [], mapped, started, dry_run=True), mapped
    for note in mapped.notes:
        print(f"note: {note}", file=sys.stderr)
    done: list[SpotifyRow | None] = [None] * len(mapped.tracks)
    bar = ProgressBar(len(mapped.tracks), label="tracks", enabled=progress)
    interrupted = False
    try:
        classify_tracks(client, info, mapped.tracks, options, done, bar)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    rows = [row for row in done if row is not None]
    options.out_dir.mkdir(parents=True, exist_ok=True)
    outputs = write_outputs(options, rows, info.labels)
    summary = _summary(options, info, rows, mapped, started, interrupted=interrupted)
    return replace(summary, outputs=[str(path) for path in outputs]), mapped


def _summary(
    options: SpotifyOptions,
    info: ModelInfo,
    rows: Sequence[SpotifyRow],
    mapped: MappedExport,
    started: float,
    *,
    interrupted: bool = False,
    dry_run: bool = False,
) -> Summary:
    return Summary.of(
        rows,
        options.min_probability,
        model=info.name,
        version=info.version,
        classified=len(rows),
        skipped=0,
        seconds=time.monotonic() - started,
        interrupted=interrupted,
        dry_run=dry_run,
    )


def mapping_text(mapped: MappedExport, options: SpotifyOptions) -> str:
    """The dry run's account: which column feeds which feature, what is left to imputation,
    which rows cannot be sent and why, and what would be written."""
    lines = ["column mapping (export column -> model feature):"]
    lines += [f"  {header} -> {feature}" for header, feature in mapped.columns]
    if mapped.omitted:
        lines.append(f"no column, imputed by the server: {', '.join(mapped.omitted)}")
    lines += [f"note: {note}" for note in mapped.notes]
    bad = [track for track in mapped.tracks if track.error]
    lines.append(f"would classify {len(mapped.tracks) - len(bad)} of {len(mapped.tracks)} rows")
    lines += [f"  line {track.line} ({track.uri or 'no URI'}): {track.error}" for track in bad]
    lines.append(
        f"would write {options.out_dir / REPORT_NAME} and one CSV of track URIs per genre "
        f"(and {UNSORTED}.csv) in {options.out_dir}"
    )
    return "\n".join(lines)


def run_organize_spotify(client: FeaturesClassifier, args: argparse.Namespace) -> int:
    options = SpotifyOptions(
        export=Path(args.export),
        out_dir=Path(args.out),
        model=args.model,
        version=args.version,
        min_probability=args.min_probability,
        batch_size=args.batch_size,
        dry_run=args.dry_run,
        timeout=args.timeout,
    )
    summary, mapped = organize_spotify(client, options, False if args.no_progress else None)
    if options.dry_run:
        if args.json:
            print(json.dumps(_mapping_json(mapped), indent=2))
        else:
            print(mapping_text(mapped, options))
        return 0
    print(summary.to_json() if args.json else summary.text())
    return INTERRUPTED_EXIT if summary.interrupted else 0


def _mapping_json(mapped: MappedExport) -> dict[str, object]:
    return {
        "dry_run": True,
        "columns": dict(mapped.columns),
        "imputed": mapped.omitted,
        "notes": mapped.notes,
        "rows": len(mapped.tracks),
        "unusable": {str(track.line): track.error for track in mapped.tracks if track.error},
    }


def add_organize_spotify_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "organize-spotify",
        help="sort a Spotify playlist export (audio-feature columns) into per-genre CSVs",
    )
    parser.add_argument("export", metavar="EXPORT.csv", help="a playlist export, e.g. Exportify's")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="where the CSVs go")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"default {DEFAULT_MODEL}")
    parser.add_argument("--version", default="", help="default: the served default version")
    parser.add_argument(
        "--min-probability",
        type=float,
        default=None,
        help="tracks whose top genre is less likely than this go to unsorted.csv",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="rows per call")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the column mapping and what would be written (asks the server only "
        "for the model's inputs)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
