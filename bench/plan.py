"""What one ``bench.run`` measures (servers, scenarios, levels, worker and stream counts) and its
flags."""

from __future__ import annotations

import argparse
import itertools
from dataclasses import asdict, dataclass
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPOSITORY_ROOT / "bench" / "results"
SERVERS = (
    "ours",
    "ours-no-batching",
    "ours-bf16",
    "ours-v2",
    "echo",
    "torchserve",
    "triton",
    "mlserver",
)
# Ours with each serving design forced, whatever GENRE_INFERENCE_PROCESS=auto picks on this
# machine: complete workers, or front-ends feeding one inference process. Named with --servers
# (the design choice per device kind, docs/benchmarks.md); not in the default run.
DESIGNS = ("ours-complete", "ours-inference")
# The other serving stacks: set up on first use, recorded as skipped (with why) when they cannot
# be set up or started, never a reason for the run to fail.
PEERS = ("torchserve", "triton", "mlserver")
# Client processes per unary cell on 2 cores. One grpc.aio process spends 80-120 µs of CPU per
# call, 0.6 of a core at the echo's 7,700 calls/s: within reach of the 90% that makes a cell
# invalid on a quiet machine. Two halve that; more add client CPU the server needs on 2 cores
# (docs/benchmark-peers.md, "Client processes").
DEFAULT_CLIENT_PROCESSES = 2
# Real-time streams send what a live source has every 100 ms (issue #24); older runs sent 0.25 s.
DEFAULT_CHUNK_SECONDS = 0.1
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
    peer_setup_s: float = 600.0  # Triton's or MLServer's venv on first use (a 300 MB wheel)
    cell_limit_s: float = 60.0
    # A throwaway load before the first measured cell (bench.run: Harness._warm_machine).
    warm_machine_s: float = 10.0
    # Client processes per unary cell, the concurrency split between them (never more processes
    # than concurrent calls); a cell where one of them used >= 90% of a core is invalid.
    client_processes: int = DEFAULT_CLIENT_PROCESSES
    stream_chunk_seconds: float = DEFAULT_CHUNK_SECONDS

    def __post_init__(self) -> None:
        unknown = [server for server in self.servers if server not in (*SERVERS, *DESIGNS)]
        if unknown:
            known = ", ".join((*SERVERS, *DESIGNS))
            raise ValueError(f"unknown servers {unknown}; known: {known}")
        unknown = [scenario for scenario in self.scenarios if scenario not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
        if self.client_processes < 1:
            raise ValueError("client_processes must be at least 1")
        if not 0 < self.stream_chunk_seconds <= 10:
            raise ValueError("stream_chunk_seconds must be in (0, 10]")
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
            client_processes=1,
            warm_machine_s=0.0,
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
    parser.add_argument(
        "--client-processes",
        type=int,
        help="load client processes per unary cell, the concurrency split between them "
        f"(default {DEFAULT_CLIENT_PROCESSES}; --quick: 1)",
    )
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        help=f"audio per message of a real-time stream (default {DEFAULT_CHUNK_SECONDS:g}; "
        "runs before issue #24 sent 0.25)",
    )
    args = parser.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan(servers=SERVERS, scenarios=SCENARIOS)
    changes: dict[str, object] = {}
    if args.servers:
        changes["servers"] = _names(parser, "--servers", args.servers, (*SERVERS, *DESIGNS))
    if args.scenarios:
        changes["scenarios"] = _names(parser, "--scenarios", args.scenarios, SCENARIOS)
    if args.client_processes is not None:
        if args.client_processes < 1:
            parser.error("--client-processes takes a positive count")
        changes["client_processes"] = args.client_processes
    if args.chunk_seconds is not None:
        if not 0 < args.chunk_seconds <= 10:
            parser.error("--chunk-seconds takes seconds in (0, 10]")
        changes["stream_chunk_seconds"] = args.chunk_seconds
    plan = Plan(**{**asdict(plan), **changes})
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


def _names(
    parser: argparse.ArgumentParser, flag: str, text: str, known: tuple[str, ...]
) -> tuple[str, ...]:
    """A comma-separated list of known names, each once, or the parser's error saying why not."""
    names = tuple(part.strip() for part in text.split(","))
    unknown = [name for name in names if name not in known]
    if unknown or len(set(names)) != len(names) or not names:
        bad = f"unknown {unknown[0]!r}" if unknown else "a name twice"
        parser.error(f"{flag}: {bad}; choose from {','.join(known)}")
    return names


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
