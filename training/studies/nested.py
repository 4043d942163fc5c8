"""A figure from tracks that chose nothing, for models whose headline figure is on a list that
also chose their epochs and temperature (GTZAN: no test tracks are shared here).

The shipped GTZAN runs select on the valid list and report on it, so their figures carry a
selection bonus. Here the same command (without the refit) runs twice on nested lists: the
valid list is dealt into two halves (seeded, each genre split evenly); the model trains on the
train list as before, one half chooses the epochs and fits the temperature, and the other half,
which chose nothing, is scored; then the halves swap. Every valid track is scored once, by a
model that neither trained on its artist (the lists are artist-disjoint) nor was chosen on it.
GTZAN lists name no artists, so one artist may have tracks in both halves: that can only make
the choice of a few scalars (epochs, temperature) a little optimistic, never the weights.

The pooled figures are added to the published version's manifest as ``nested_*`` with a
protocol sentence (``training.studies.restate``); its weights are not touched.

    python -m training.studies.nested_cli --lists ../shared/data/gtzan/splits \\
        --into models/gtzan-features-mlp/1 features --dataset gtzan30 --data ../shared/data --seed 0
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelcore.checkpoint import read_manifest
from training.splits import deal_halves, read_list
from training.studies.restate import add_metrics


def valid_halves(lists: Path, out: Path, seed: int) -> tuple[Path, Path]:
    """Writes two list folders under ``out``: train stays train, one half of the valid list
    (``deal_halves``) becomes valid and the other test, and the reverse."""
    train, valid = read_list(lists / "train_filtered.txt"), read_list(lists / "valid_filtered.txt")
    halves = deal_halves(valid, seed)
    folders = (out / "a", out / "b")
    for folder, (choose, score) in zip(folders, (halves, halves[::-1]), strict=True):
        folder.mkdir(parents=True, exist_ok=True)
        for name, entries in (("train", train), ("valid", choose), ("test", score)):
            (folder / f"{name}_filtered.txt").write_text("".join(f"{e}\n" for e in sorted(entries)))
    return folders


def pooled_figures(kind: str, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The two half runs' test figures (each a manifest's metrics) pooled by their row or
    track counts: every figure here is a mean over rows, so the pooled one is exact."""
    means: tuple[str, ...]
    if kind == "features":
        count, means = "evaluated_rows", ("accuracy", "log_loss", "top3_accuracy")
    else:
        count, means = "evaluated_tracks", ("track_accuracy", "track_log_loss")
    weights = np.array([run[count] for run in runs], dtype=np.float64)
    figures: dict[str, Any] = {f"nested_{count}": int(weights.sum())}
    for key in means:
        figures[f"nested_{key}"] = float(np.average([run[key] for run in runs], weights=weights))
    if kind == "audio":
        covered = [run["evaluated_tracks_trained_classes"] for run in runs]
        accuracies = [run["track_accuracy_trained_classes"] for run in runs]
        figures["nested_track_accuracy_trained_classes"] = float(
            np.average(accuracies, weights=covered)
        )
    return figures


def protocol_sentence(kind: str, halves: tuple[int, int], seed: int) -> str:
    unit = "rows" if kind == "features" else "tracks"
    return (
        f"nested_*: figures from tracks that chose nothing: the same procedure without the refit, "
        f"run twice on the valid list dealt into halves ({halves[0]} and {halves[1]} {unit}, "
        f"each genre split evenly, seed {seed}): trained on the train list, epochs and "
        f"temperature chosen on one half, scored on the other, then swapped; pooled over all "
        f"{sum(halves)} valid {unit} (GTZAN lists name no artists, so one may have tracks in "
        f"both halves: only the choice of epochs and temperature can gain from that)."
    )


def run_nested(
    kind: str, lists: Path, into: Path, flags: Sequence[str], seed: int
) -> dict[str, Any]:
    """Runs ``genre-train <kind> <flags> --no-refit`` on both halvings and adds the pooled
    figures to the published version ``into``."""
    from training.cli import main as train_main

    runs = []
    with tempfile.TemporaryDirectory(prefix="nested-") as scratch:
        root = Path(scratch)
        for folder in valid_halves(lists, root / "lists", seed):
            out = root / "out" / folder.name
            command = [kind, *flags, "--splits", str(folder), "--out", str(out), "--no-refit"]
            if train_main([*command, "--no-progress"]) != 0:
                raise RuntimeError(f"genre-train {' '.join(command)} failed")
            (version,) = (path.parent for path in out.glob("*/*/manifest.json"))
            runs.append(dict(read_manifest(version).metrics))
    figures = pooled_figures(kind, runs)
    count = "evaluated_rows" if kind == "features" else "evaluated_tracks"
    halves = (int(runs[1][count]), int(runs[0][count]))
    add_metrics(into, figures, protocol_sentence(kind, halves, seed))
    return figures
