"""``genre-client organize``: sort a directory of audio files into genre playlists.

Finds the audio under ``INPUT_DIR``, streams each file that is new or changed since the last run
through ``ClassifyAudioStream`` (``--jobs`` files in flight), and writes into ``OUT_DIR``:
``<genre>.m3u8`` per genre, ``unsorted.m3u8`` (abstained or under ``--min-probability``) and
``report.csv``. Every output is rebuilt from the report's rows at the end of the run (and when
Ctrl-C stops it), each file replaced atomically, so the playlists are always complete for the
files that were done.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from client.organize.file_stream import AudioClassifier, StreamPlan, classify_file
from client.organize.flow import Throttle
from client.organize.library import (
    REPORT_NAME,
    OrganizeError,
    ReportRow,
    find_library,
    read_report,
    report_text,
    unsupported_reason,
)
from client.organize.placement import Summary, check_min_probability, place
from client.organize.playlists import (
    UNSORTED,
    Track,
    file_stem,
    m3u8_text,
    remove_stale,
    write_atomic,
)
from client.organize.progress import ProgressBar
from client.results import ModelInfo

PLAYLIST_SUFFIX = ".m3u8"
INTERRUPTED_EXIT = 130
LEAD_HOPS = 1
"""Windows a stream may have waiting at the server beyond the one being filled: enough to keep
the model busy between answers, few enough that window latency stays low (the server refuses
new streams while its recent window latency is past its bound, 250 ms by default)."""


@dataclass(frozen=True)
class OrganizeOptions:
    """One ``organize`` run, as the flags give it."""

    model: str
    input_dir: Path
    out_dir: Path
    version: str = ""
    jobs: int = 4
    min_probability: float | None = None
    hop_seconds: float = 0.0
    force: bool = False
    dry_run: bool = False
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise OrganizeError(f"--jobs must be >= 1, got {self.jobs}")
        if self.hop_seconds < 0:
            raise OrganizeError(
                f"--hop-seconds must be >= 0 (0: the model's), got {self.hop_seconds}"
            )
        check_min_probability(self.min_probability)


@dataclass(frozen=True)
class Plan:
    """What a run will do: files to classify, rows kept from the last run (current), and rows
    for files that cannot be classified at all (formats nothing here decodes)."""

    todo: tuple[Path, ...]
    kept: tuple[ReportRow, ...]
    unreadable: tuple[ReportRow, ...]
    previous: tuple[ReportRow, ...]


def plan_run(options: OrganizeOptions) -> Plan:
    """Compares the library with the last report. Rows of files no longer under ``INPUT_DIR``
    are dropped, so the playlists never point at files that are gone."""
    out_dir = options.out_dir
    library = find_library(options.input_dir, skip=[out_dir])
    previous = [] if options.force else read_report(out_dir / REPORT_NAME)
    by_path = {row.path: row for row in previous}
    todo: list[Path] = []
    kept: list[ReportRow] = []
    for path in library.audio:
        row = by_path.get(str(path))
        try:
            status = path.stat()
        except OSError:
            todo.append(path)  # classify_file records why it cannot be read
            continue
        if row is not None and row.is_current(
            status.st_size, status.st_mtime_ns, options.model, options.version
        ):
            kept.append(row)
        else:
            todo.append(path)
    unreadable = tuple(
        ReportRow(path=str(path), model=options.model, error=unsupported_reason(path))
        for path in library.unsupported
    )
    return Plan(tuple(todo), tuple(kept), unreadable, tuple(previous))


def write_outputs(
    out_dir: Path, rows: Sequence[ReportRow], min_probability: float | None, stale: Sequence[str]
) -> list[Path]:
    """Every playlist and the report, from ``rows``; playlists of ``stale`` genres (an earlier
    run's) that get no track now are removed. Returns the files written."""
    playlists: dict[str, list[Track]] = {}
    for row in sorted(rows, key=lambda row: row.path):
        playlist, _ = place(row, min_probability)
        if playlist is not None:
            track = Track(Path(row.path), row.seconds, row.title)
            playlists.setdefault(playlist, []).append(track)
    written = []
    for playlist, tracks in sorted(playlists.items()):
        stem = UNSORTED if playlist == UNSORTED else file_stem(playlist)
        path = out_dir / f"{stem}{PLAYLIST_SUFFIX}"
        write_atomic(path, m3u8_text(tracks, out_dir))
        written.append(path)
    report = out_dir / REPORT_NAME
    write_atomic(report, report_text(rows))
    candidates = [out_dir / f"{file_stem(genre)}{PLAYLIST_SUFFIX}" for genre in stale]
    remove_stale(out_dir, written, [*candidates, out_dir / f"{UNSORTED}{PLAYLIST_SUFFIX}"])
    return [*written, report]


def lead_seconds(info: ModelInfo, hop_seconds: float) -> float | None:
    """How far a stream may run ahead of its answers: the window plus :data:`LEAD_HOPS` hops
    (None when the server does not describe the model's windows)."""
    if info.audio is None or info.audio.window_seconds <= 0:
        return None
    hop = hop_seconds or info.audio.default_hop_seconds or info.audio.window_seconds
    return info.audio.window_seconds + LEAD_HOPS * hop


def resolve_model(
    models: Sequence[ModelInfo], name: str, version: str, kind: str, use_instead: str
) -> ModelInfo:
    """The listed model ``--model``/``--version`` name (empty version: the default one), which
    must be of ``kind``; otherwise an error naming what is served, or the command to use."""
    candidates = [info for info in models if info.name == name]
    if version:
        candidates = [info for info in candidates if info.version == version]
    elif len(candidates) > 1:
        candidates = [info for info in candidates if info.is_default]
    if len(candidates) != 1:
        served = ", ".join(sorted(f"{m.name}:{m.version} ({m.kind})" for m in models)) or "none"
        wanted = f"{name}:{version}" if version else name
        raise OrganizeError(f"the server lists no model {wanted}; served: {served}")
    if candidates[0].kind != kind:
        found = candidates[0].kind
        article = "an" if found[0] in "aeiou" else "a"
        raise OrganizeError(f"{name} is {article} {found} model; {use_instead}")
    return candidates[0]


def resolve_audio_model(models: Sequence[ModelInfo], name: str, version: str) -> ModelInfo:
    use_instead = "organize streams audio (organize-spotify sorts Spotify exports)"
    return resolve_model(models, name, version, "audio", use_instead)


def organize(
    client: AudioClassifier, options: OrganizeOptions, progress: bool | None = None
) -> Summary:
    """Runs ``options`` (not a dry run); Ctrl-C stops it and still writes the outputs.

    A status no file would survive (server unreachable, token refused, model gone) also stops
    the run after the outputs are written, and is raised to the caller.
    """
    started = time.monotonic()
    plan = plan_run(options)
    models = client.list_models(timeout=options.timeout)
    info = resolve_audio_model(models, options.model, options.version)
    stream_plan = StreamPlan(
        model=info.name,
        version=info.version,
        hop_seconds=options.hop_seconds,
        timeout=options.timeout,
        lead_seconds=lead_seconds(info, options.hop_seconds),
    )
    new_rows, interrupted, fatal = _classify_all(
        client, plan.todo, stream_plan, options.jobs, progress
    )
    rows = [*plan.kept, *plan.unreadable, *new_rows]
    stale = sorted({*info.labels, *(row.genre for row in plan.previous if row.genre)})
    options.out_dir.mkdir(parents=True, exist_ok=True)
    outputs = write_outputs(options.out_dir, rows, options.min_probability, stale)
    if fatal is not None:
        raise fatal
    return Summary.of(
        rows,
        options.min_probability,
        model=info.name,
        version=info.version,
        classified=len(new_rows),
        skipped=len(plan.kept),
        seconds=time.monotonic() - started,
        interrupted=interrupted,
        outputs=[str(path) for path in outputs],
    )


def _classify_all(
    client: AudioClassifier,
    todo: Sequence[Path],
    plan: StreamPlan,
    jobs: int,
    progress: bool | None,
) -> tuple[list[ReportRow], bool, Exception | None]:
    """Streams ``todo`` with ``jobs`` files in flight. Returns the rows of every file that
    finished (those that finish while the run is stopping too: their answers are complete),
    whether Ctrl-C stopped the run, and the error that stopped it, if one did."""
    stop = threading.Event()
    bar = ProgressBar(len(todo), enabled=progress if todo else False)
    bar.advance(0)
    failed = 0
    interrupted = False
    executor = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="organize")
    throttle = Throttle(jobs)
    futures = [executor.submit(classify_file, client, path, plan, stop, throttle) for path in todo]
    pending: set[Future[ReportRow | None]] = set(futures)
    try:
        while pending and not stop.is_set():
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                if future.exception() is not None:
                    stop.set()
                elif (row := future.result()) is not None:
                    failed += row.failed
                    bar.advance(note=f"{failed} failed" if failed else "")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
        bar.close()
    finished = [f for f in futures if f.done() and not f.cancelled()]
    errors = [error for f in finished if (error := f.exception()) is not None]
    rows = [row for f in finished if f.exception() is None and (row := f.result()) is not None]
    fatal = next((error for error in errors if isinstance(error, Exception)), None)
    return rows, interrupted, fatal


def dry_run_summary(options: OrganizeOptions, plan: Plan) -> Summary:
    """What a run would write, from the current rows alone: no server is contacted."""
    rows = [*plan.kept, *plan.unreadable]
    playlists = sorted(
        {
            f"{UNSORTED if name == UNSORTED else file_stem(name)}{PLAYLIST_SUFFIX}"
            for row in rows
            if (name := place(row, options.min_probability)[0]) is not None
        }
    )
    return Summary.of(
        rows,
        options.min_probability,
        model=options.model,
        version=options.version,
        classified=0,
        skipped=len(plan.kept),
        seconds=0.0,
        dry_run=True,
        outputs=[str(options.out_dir / name) for name in [*playlists, REPORT_NAME]],
    )


def dry_run_report(plan: Plan, summary: Summary, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {
                "dry_run": True,
                "classify": [str(path) for path in plan.todo],
                "unchanged": len(plan.kept),
                "cannot_decode": {row.path: row.error for row in plan.unreadable},
                "outputs": summary.outputs,
            },
            indent=2,
        )
    lines = [f"would classify {len(plan.todo)} file(s):", *(f"  {path}" for path in plan.todo)]
    lines.append(f"unchanged since the last run: {len(plan.kept)} file(s)")
    if plan.unreadable:
        lines.append(f"cannot decode: {len(plan.unreadable)} file(s):")
        lines += [f"  {row.path}: {row.error}" for row in plan.unreadable]
    lines.append("would write (the new files' genres may add playlists):")
    lines += [f"  {path}" for path in summary.outputs]
    return "\n".join(lines)


def run_organize(client: AudioClassifier, args: argparse.Namespace) -> int:
    """The ``organize`` subcommand: exit 0, or 130 when Ctrl-C stopped it (outputs written)."""
    options = OrganizeOptions(
        model=args.model,
        input_dir=Path(args.input_dir),
        out_dir=Path(args.out),
        version=args.version,
        jobs=args.jobs,
        min_probability=args.min_probability,
        hop_seconds=args.hop_seconds,
        force=args.force,
        dry_run=args.dry_run,
        timeout=args.timeout,
    )
    if options.dry_run:
        plan = plan_run(options)
        print(dry_run_report(plan, dry_run_summary(options, plan), args.json))
        return 0
    summary = organize(client, options, progress=False if args.no_progress else None)
    print(summary.to_json() if args.json else summary.text())
    return INTERRUPTED_EXIT if summary.interrupted else 0


def add_organize_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "organize", help="sort a directory of audio files into genre playlists (M3U)"
    )
    parser.add_argument("input_dir", metavar="INPUT_DIR", help="the music library to sort")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="where playlists go")
    parser.add_argument("--model", required=True, help="an audio model (see `models`)")
    parser.add_argument("--version", default="", help="default: the served default version")
    parser.add_argument("--jobs", type=int, default=4, help="files streamed at once (default 4)")
    parser.add_argument(
        "--min-probability",
        type=float,
        default=None,
        help="files whose top genre is less likely than this go to unsorted.m3u8",
    )
    parser.add_argument("--hop-seconds", type=float, default=0.0, help="0: the model's default")
    parser.add_argument("--force", action="store_true", help="classify unchanged files again")
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be done; contact no server"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
