"""What one ``bench.run`` measures (servers, scenarios, levels, worker and stream counts) and its
flags."""

from __future__ import annotations

import argparse
import itertools
from dataclasses import asdict, dataclass
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPOSITORY_ROOT / "bench" / "results"
SERVERS = ("ours", "ours-no-batching", "ours-bf16", "ours-v2", "echo", "torchserve")
SCENARIOS = ("features-1", "features-256", "audio")


@dataclass(frozen=True)
class Plan:
    servers: tuple[str, ...]
    scenarios: tuple[str, ...]
    # Serving processes sharing one port: every server kind runs once per count (ours with
    # GENRE_WORKERS, N echo processes on one SO_REUSEPORT port, TorchServe N workers per model).
    workers: tuple[int, ...] = (1,)
    # The kernel balances connections, not calls, so the client opens this many per worker;
    # one worker keeps today's single connection (see ``connections``).
    connections_per_worker: int = 4
    levels: tuple[int, ...] = (1, 8, 64, 256)
    bulk_levels: tuple[int, ...] = (1, 8)
    warmup_s: float = 2.0
    window_s: float = 1.5
    max_windows: int = 6
    stream_counts: tuple[int, ...] = (1, 4, 16, 32, 64, 128, 256)
    stream_audio_seconds: float = 12.0
    stream_phases: str = "even"  # real-time starts: even over 1 s, or random over the model's hop
    fast_audio_seconds: float = 30.0
    fast_streams: int = 32
    offline_batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    gpu_offline_batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    torchserve_setup_s: float = 240.0
    cell_limit_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.workers or not _ascending_positive(self.workers):
            raise ValueError(f"workers must be positive and ascending, got {self.workers}")
        if self.connections_per_worker < 1:
            raise ValueError("connections_per_worker must be at least 1")

    def connections(self, workers: int) -> int:
        """Client connections for a server of ``workers`` processes.

        SO_REUSEPORT hands each new connection to one process, so N processes need several
        connections each or some sit idle. One process keeps the single connection every run
        before workers used, so its figures stay comparable with the committed ones.
        """
        return 1 if workers == 1 else self.connections_per_worker * workers

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            servers=("ours", "echo"),
            scenarios=("features-1",),
            levels=(1,),
            warmup_s=0.3,
            window_s=0.3,
            max_windows=4,
            cell_limit_s=30.0,
        )


def parse_arguments(argv: list[str] | None, doc: str | None) -> tuple[argparse.Namespace, Plan]:
    """The command line of ``bench.run`` and the plan it asks for."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] or None)
    parser.add_argument("--quick", action="store_true", help="one short cell per server")
    parser.add_argument("--repository", type=Path, default=REPOSITORY_ROOT / "models")
    parser.add_argument("--model", default="gtzan-features-mlp", help="the features model")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--servers", help=f"comma-separated subset of {','.join(SERVERS)}")
    parser.add_argument("--scenarios", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument(
        "--stream-counts",
        help="comma-separated real-time audio stream counts, ascending "
        f"(default {','.join(map(str, Plan.stream_counts))})",
    )
    parser.add_argument(
        "--stream-seconds",
        type=float,
        help=f"audio per real-time stream (default {Plan.stream_audio_seconds:g})",
    )
    parser.add_argument(
        "--stream-phases",
        choices=("even", "random"),
        help="real-time stream starts: even over 1 s (default) or seeded random over one hop",
    )
    parser.add_argument(
        "--workers",
        help="comma-separated serving process counts, ascending; every server runs once per "
        "count (default 1)",
    )
    args = parser.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan(servers=SERVERS, scenarios=SCENARIOS)
    if args.servers:
        plan = Plan(**{**asdict(plan), "servers": tuple(args.servers.split(","))})
    if args.scenarios:
        plan = Plan(**{**asdict(plan), "scenarios": tuple(args.scenarios.split(","))})
    if args.stream_counts is not None:
        counts = _counts(parser, "--stream-counts", args.stream_counts, "1,4,16")
        plan = Plan(**{**asdict(plan), "stream_counts": counts})
    if args.workers is not None:
        workers = _counts(parser, "--workers", args.workers, "1,2")
        plan = Plan(**{**asdict(plan), "workers": workers})
    if args.stream_seconds:
        plan = Plan(**{**asdict(plan), "stream_audio_seconds": args.stream_seconds})
    if args.stream_phases:
        plan = Plan(**{**asdict(plan), "stream_phases": args.stream_phases})
    return args, plan


def _ascending_positive(counts: tuple[int, ...]) -> bool:
    return min(counts) >= 1 and all(a < b for a, b in itertools.pairwise(counts))


def _counts(parser: argparse.ArgumentParser, flag: str, text: str, example: str) -> tuple[int, ...]:
    """A comma-separated list of positive counts, strictly ascending, or the parser's error."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or not _ascending_positive(counts):
        parser.error(f"{flag} takes positive counts in ascending order, e.g. {example}")
    return counts
