"""``genre-client``: list models, classify feature rows from CSV/JSON, stream audio, and sort a
music library (``organize``) or a Spotify export (``organize-spotify``) into genre playlists.

Exit codes: 0 ok, 1 the server answered with an error (status name and details on stderr),
2 bad usage or unusable input, 130 interrupted. The parser is built inside :func:`main`, never at
import time, so importing this module has no side effects.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence

from client.client import GenreClient
from client.errors import GenreClientError
from client.formatting import (
    models_json,
    models_table,
    predictions_json,
    predictions_table,
    update_json,
    update_line,
)
from client.inputs import InputError, parse_rows, select_features, select_titles, title_column
from client.organize.folder import add_organize_parser, run_organize
from client.organize.spotify import add_organize_spotify_parser, run_organize_spotify
from client.pacing import chunk_size, paced, read_chunks, split_bytes
from client.requests import BYTES_PER_SAMPLE, Encoding, StreamSettings
from client.results import FeaturesResult, ModelInfo

DESCRIPTION = (
    "Ask a genre-serve server for music genres: list models, classify feature rows, stream audio."
)
DEFAULT_TARGET = "localhost:50051"
DEFAULT_RATE = 22050
DEFAULT_ENCODING: Encoding = "s16le"


class UsageError(Exception):
    """The command cannot run as asked (exit 2); the message says why."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genre-client", description=DESCRIPTION)
    parser.add_argument("--target", default=DEFAULT_TARGET, help="host:port of genre-serve")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="deadline per call in seconds (default 10; streams default to one hour)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=1,
        metavar="N",
        help=(
            "open N connections and take them in turn (default 1): a server with several "
            "worker processes balances connections, not calls, so one connection reaches "
            "one worker"
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list served model versions")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")

    features = commands.add_parser("features", help="classify feature rows from CSV or JSON")
    features.add_argument(
        "input",
        help="a .csv or .json file, or - for stdin (a title or Track Name column is sent as "
        "each row's title to models that take one)",
    )
    features.add_argument("--model", required=True)
    features.add_argument("--version", default="", help="default: the served default version")
    features.add_argument("--top-k", type=int, default=0, help="genres per row; 0 = all")
    features.add_argument("--batch-size", type=int, default=256, help="rows per call")
    features.add_argument(
        "--min-probability",
        type=float,
        default=None,
        help="rows whose top genre is less likely are marked uncertain (default: the model's)",
    )
    features.add_argument("--json", action="store_true", help="print JSON instead of a table")

    stream = commands.add_parser("stream", help="stream audio and print rolling predictions")
    stream.add_argument(
        "input", help="an audio file (any format FFmpeg decodes, via PyAV) or - for raw PCM"
    )
    stream.add_argument("--model", required=True)
    stream.add_argument("--version", default="")
    stream.add_argument(
        "--rate", type=int, default=None, help=f"stdin only (default {DEFAULT_RATE})"
    )
    stream.add_argument(
        "--encoding",
        choices=sorted(BYTES_PER_SAMPLE),
        default=None,
        help=f"stdin only (default {DEFAULT_ENCODING})",
    )
    stream.add_argument("--channels", type=int, default=None, help="stdin only (default 1)")
    stream.add_argument("--chunk-ms", type=float, default=100.0, help="audio per message")
    stream.add_argument("--realtime", action="store_true", help="send at the pace audio plays")
    stream.add_argument("--hop-seconds", type=float, default=0.0, help="0: the model's default")
    stream.add_argument("--top-k", type=int, default=0)
    stream.add_argument(
        "--min-probability",
        type=float,
        default=None,
        help="answers whose top genre is less likely are marked uncertain (default: the model's)",
    )
    stream.add_argument(
        "--silence-dbfs",
        type=float,
        default=None,
        help="windows quieter than this RMS level are silence (default: the server's, -60)",
    )
    stream.add_argument("--json", action="store_true", help="print one JSON object per update")

    add_organize_parser(commands)
    add_organize_spotify_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = COMMANDS[args.command]
    try:
        with GenreClient(args.target, connections=args.connections) as client:
            return run(client, args)
    except GenreClientError as error:
        retried = f" (after {error.attempts} attempts)" if error.attempts > 1 else ""
        print(f"error: {error.code.name}: {error.details}{retried}", file=sys.stderr)
        return 1
    except (UsageError, InputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run_models(client: GenreClient, args: argparse.Namespace) -> int:
    models = client.list_models(timeout=args.timeout)
    if args.json:
        print(json.dumps(models_json(models), indent=2))
    else:
        print(models_table(models))
    return 0


def run_features(client: GenreClient, args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    raw_rows = parse_rows(_read_text(args.input))
    if not raw_rows:
        raise UsageError(f"{args.input}: no rows")
    info = resolve_model(client.list_models(timeout=args.timeout), args.model, args.version)
    rows, dropped = select_features(raw_rows, info.feature_names)
    column = title_column(raw_rows) if info.takes_titles else None
    titles = select_titles(raw_rows, column) if column is not None else None
    dropped = [name for name in dropped if name != column]
    if dropped:
        print(
            f"note: dropping columns {info.name} does not take: {', '.join(dropped)}",
            file=sys.stderr,
        )
    predictions, abstentions = [], []
    for start in range(0, len(rows), args.batch_size):
        # Pinned to the resolved version so every batch is answered by the same model.
        answer = client.classify_features(
            info.name,
            rows[start : start + args.batch_size],
            version=info.version,
            top_k=args.top_k,
            min_probability=args.min_probability,
            timeout=args.timeout,
            titles=titles[start : start + args.batch_size] if titles is not None else None,
        )
        predictions.extend(answer.predictions)
        abstentions.extend(answer.abstentions)
    result = FeaturesResult(
        model=info.name, version=info.version, predictions=predictions, abstentions=abstentions
    )
    if args.json:
        print(json.dumps(predictions_json(result), indent=2))
    else:
        print(predictions_table(result.predictions, abstentions=result.abstentions))
    return 0


def resolve_model(models: Sequence[ModelInfo], name: str, version: str) -> ModelInfo:
    """The listed features model a ``--model``/``--version`` pair names (empty version: the
    default one, or the only one)."""
    candidates = [info for info in models if info.name == name]
    if version:
        candidates = [info for info in candidates if info.version == version]
    elif len(candidates) > 1:
        candidates = [info for info in candidates if info.is_default]
    served = ", ".join(sorted({f"{info.name}:{info.version}" for info in models})) or "none"
    if len(candidates) != 1:
        wanted = f"{name}:{version}" if version else f"{name} (default version)"
        raise UsageError(f"the server lists no model {wanted}; served: {served}")
    info = candidates[0]
    if info.kind != "features":
        raise UsageError(f"{info.name}:{info.version} is a {info.kind} model; use `stream`")
    return info


def run_stream(client: GenreClient, args: argparse.Namespace) -> int:
    settings, chunks = _stream_source(args)
    paced_chunks = paced(chunks, settings.bytes_per_second, realtime=args.realtime)
    updates = client.stream_audio(
        settings.model,
        paced_chunks,
        sample_rate=settings.sample_rate,
        encoding=settings.encoding,
        channels=settings.channels,
        hop_seconds=settings.hop_seconds,
        top_k=settings.top_k,
        version=settings.version,
        min_probability=settings.min_probability,
        silence_threshold_dbfs=settings.silence_threshold_dbfs,
        timeout=args.timeout,
    )
    for update in updates:
        print(json.dumps(update_json(update)) if args.json else update_line(update), flush=True)
    return 0


def _stream_source(args: argparse.Namespace) -> tuple[StreamSettings, Iterable[bytes]]:
    """Settings and chunks for stdin's raw PCM as declared by the flags, or a decoded file."""
    if args.input == "-":
        settings = StreamSettings(
            model=args.model,
            sample_rate=args.rate or DEFAULT_RATE,
            encoding=args.encoding or DEFAULT_ENCODING,
            channels=args.channels or 1,
            hop_seconds=args.hop_seconds,
            top_k=args.top_k,
            version=args.version,
            min_probability=args.min_probability,
            silence_threshold_dbfs=args.silence_dbfs,
        )
        size = _chunk_bytes(settings, args.chunk_ms)
        return settings, read_chunks(sys.stdin.buffer, size)
    from client.audio import AudioDecodeError, decode_file

    if args.rate or args.encoding or args.channels:
        print(
            "note: --rate/--encoding/--channels apply to stdin; the file's own are used",
            file=sys.stderr,
        )
    try:
        audio = decode_file(args.input)
    except AudioDecodeError as error:
        raise UsageError(f"cannot decode {args.input}: {error}") from error
    settings = StreamSettings(
        model=args.model,
        sample_rate=audio.sample_rate,
        encoding="f32le",
        channels=audio.channels,
        hop_seconds=args.hop_seconds,
        top_k=args.top_k,
        version=args.version,
        min_probability=args.min_probability,
        silence_threshold_dbfs=args.silence_dbfs,
    )
    return settings, split_bytes(audio.pcm, _chunk_bytes(settings, args.chunk_ms))


def _chunk_bytes(settings: StreamSettings, chunk_ms: float) -> int:
    frame = BYTES_PER_SAMPLE[settings.encoding] * settings.channels
    return chunk_size(settings.bytes_per_second, frame, chunk_ms)


def _read_text(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        with open(source, encoding="utf-8-sig", newline="") as handle:
            return handle.read()
    except OSError as error:
        raise UsageError(f"cannot read {source}: {error.strerror}") from error


COMMANDS: dict[str, Callable[[GenreClient, argparse.Namespace], int]] = {
    "models": run_models,
    "features": run_features,
    "stream": run_stream,
    "organize": run_organize,
    "organize-spotify": run_organize_spotify,
}
