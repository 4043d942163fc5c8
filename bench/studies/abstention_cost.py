"""What knowing when not to answer costs per audio window, in CPU time.

Two versions of the same genre model are timed alike: the base (no detector) and the version
with the music detector (``genre-train abstention``), through ``AudioRunner.run`` at fixed batch
sizes on one thread, the best of interleaved rounds. The rest of the check runs per window in the
stream session (the RMS level, the verdict and the running track tally); it is timed on its own
and added. The issue's budget: at most 15% more CPU per window.

    python -m bench.studies.abstention_cost --base models/gtzan-cnn-lstm/3 \
        --with-detector models/gtzan-cnn-lstm/4 --out bench/results/abstention
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from bench.machine import describe
from modelcore.abstention import Policy, TrackTally, level_dbfs, window_abstention
from modelcore.checkpoint import load_checkpoint
from server.runner import AudioRunner, split_outputs

BUDGET = 0.15


def cpu_seconds_per_call(call: Callable[[], object], seconds: float) -> float:
    """CPU time of one call (process time: what the machine pays, whatever the clock does)."""
    call()
    runs, started = 0, time.process_time()
    while runs < 3 or time.process_time() - started < seconds:
        call()
        runs += 1
    return (time.process_time() - started) / runs


def session_check_seconds(window_samples: int, classes: int, seconds: float) -> float:
    """The per-window work the stream session adds: level, verdict and track tally."""
    rng = np.random.default_rng(0)
    window = (0.1 * rng.standard_normal(window_samples)).astype(np.float32)
    probabilities = np.full(classes, 1 / classes, dtype=np.float32)
    policy = Policy(0.2, -60.0, 0.5)
    tally = TrackTally(classes, policy)

    def check() -> None:
        level = level_dbfs(window)
        verdict = window_abstention(policy, level, 0.9, float(probabilities.max()))
        tally.add(probabilities, verdict, 0.9)
        tally.answer()

    return cpu_seconds_per_call(check, seconds)


def measure(
    base: Path, detector: Path, batch_sizes: Sequence[int], rounds: int, seconds: float
) -> dict[str, Any]:
    torch.set_num_threads(1)
    runners = {
        "base": AudioRunner(load_checkpoint(base), torch.device("cpu")),
        "with_detector": AudioRunner(load_checkpoint(detector), torch.device("cpu")),
    }
    samples = runners["base"].frontend_config.window_samples
    rng = np.random.default_rng(0)
    inputs = {
        size: (0.1 * rng.standard_normal((size, samples))).astype(np.float32)
        for size in batch_sizes
    }
    best = {(name, size): float("inf") for name in runners for size in batch_sizes}
    for _ in tqdm(range(rounds), desc="rounds"):
        for size in batch_sizes:
            for name, runner in runners.items():
                run = functools.partial(runner.run, inputs[size])
                per_call = cpu_seconds_per_call(run, seconds / rounds)
                best[name, size] = min(best[name, size], per_call / size)
    probabilities, music = split_outputs(runners["with_detector"].run(inputs[batch_sizes[0]]))
    if np.isnan(music).any() or probabilities.shape[1] != len(runners["base"].labels):
        raise ValueError(f"{detector}: not the base model with a music detector")
    session = session_check_seconds(samples, len(runners["base"].labels), seconds)
    rows = []
    for size in batch_sizes:
        base_ms = 1000 * best["base", size]
        detector_ms = 1000 * best["with_detector", size]
        total_ms = detector_ms + 1000 * session
        rows.append(
            {
                "batch": size,
                "base_ms_per_window": base_ms,
                "detector_ms_per_window": detector_ms,
                "session_check_ms_per_window": 1000 * session,
                "extra_share": total_ms / base_ms - 1,
            }
        )
    return {
        "base": str(base),
        "with_detector": str(detector),
        "threads": 1,
        "machine": describe(),
        "budget": BUDGET,
        "within_budget": all(row["extra_share"] <= BUDGET for row in rows),
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    machine = result["machine"]
    lines = [
        "# CPU per audio window, with and without the abstention check",
        "",
        f"{result['base']} against {result['with_detector']}, `AudioRunner.run` on one thread "
        f"(CPU time, best of interleaved rounds), plus the session's per-window check. "
        f"Machine: {machine['cpu_count']} x {machine['cpu_model']}, load average at start "
        f"{machine['load_average_at_start']}.",
        "",
        "| batch | base ms/window | with detector ms/window | session check ms/window | extra |",
        "|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['batch']} | {row['base_ms_per_window']:.2f} | "
            f"{row['detector_ms_per_window']:.2f} | {row['session_check_ms_per_window']:.3f} | "
            f"{100 * row['extra_share']:+.1f}% |"
        )
    verdict = "within" if result["within_budget"] else "over"
    lines += ["", f"Budget: at most +{100 * BUDGET:.0f}%: {verdict}.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--with-detector", type=Path, required=True)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0, help="CPU seconds per cell")
    parser.add_argument("--out", type=Path, default=Path("bench/results/abstention"))
    arguments = parser.parse_args(argv)
    sizes = [int(size) for size in arguments.batch_sizes.split(",")]
    started = time.time()
    result = measure(
        arguments.base, arguments.with_detector, sizes, arguments.rounds, arguments.seconds
    )
    result["wall_seconds"] = round(time.time() - started, 1)
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "abstention_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    (arguments.out / "abstention_cost.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
