"""``python -m training.studies.spotify_gap_cli``: the #25 study, written as JSON and Markdown.

    OMP_NUM_THREADS=1 .venv/bin/python -m training.studies.spotify_gap_cli \\
        --data ../shared/data --v4-cv cv/v4.npz --out models/spotify11-mlp/4

``--v4-cv`` is the ``--cv-save`` file of v4's training command; with it the project-protocol
table adds v4's own figures and its paired differences from the baselines (same folds, same
rows). Writes ``spotify_gap.json`` and ``spotify_gap.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from training.features.config import TitleConfig, TreeConfig
from training.features.crossval import CrossValidation, clustered_mean, row_scores
from training.features.spotify_data import SPOTIFY11_CLASSES, resolve_spotify11_csv
from training.studies.spotify_gap import (
    FloatArray,
    Rows,
    Variant,
    baseline,
    cross_validate,
    figures,
    issue_rows,
    project_rows,
    unit_table,
)

# (key, what changes, variant), in the order the table reads; each row changes one thing.
ISSUE_STEPS: tuple[tuple[str, str, Variant], ...] = (
    ("baseline", "the issue's baseline: HGB, 14 raw columns, NaN left missing", baseline()),
    (
        "baseline_scored_in_ms",
        "the same models, every duration sent in milliseconds (as a Spotify export has them)",
        baseline(scored_in_ms=True),
    ),
    ("unit_repaired", "durations in minutes turned into milliseconds", baseline(repair=True)),
    (
        "imputed",
        "and missing values filled by the shipped model's imputers (missingness not learnt)",
        baseline(repair=True, impute="linear"),
    ),
    (
        "median_imputed",
        "or filled with the column medians instead",
        baseline(repair=True, impute="median"),
    ),
    (
        "single_genre",
        "imputed, trained on the rows of tracks with one genre only (`--conflicts drop`)",
        baseline(repair=True, impute="linear", single_genre=True),
    ),
    (
        "v3_trees",
        "imputed, with v3's tree settings (31 leaves, 40 rows a leaf, L2 1; rounds chosen on an "
        "inner artist-grouped valid part)",
        baseline(repair=True, impute="linear", settings=TreeConfig()),
    ),
    (
        "imputed_with_titles",
        "imputed, with the title member stacked (weights fitted on an inner valid part)",
        baseline(repair=True, impute="linear", titles=TitleConfig()),
    ),
    (
        "baseline_with_titles",
        "the issue's baseline with the title member stacked",
        baseline(titles=TitleConfig()),
    ),
)
PROJECT_STEPS = tuple(
    step
    for step in ISSUE_STEPS
    if step[0]
    in ("baseline", "baseline_scored_in_ms", "unit_repaired", "imputed", "imputed_with_titles")
)


def run_protocol(
    rows: Rows, steps: Sequence[tuple[str, str, Variant]], progress: bool
) -> tuple[dict[str, Any], dict[str, FloatArray]]:
    results, predictions = {}, {}
    for key, words, variant in tqdm(steps, desc="variants", disable=not progress):
        predictions[key] = cross_validate(rows, variant)
        results[key] = {"change": words, **figures(rows, predictions[key])}
    return results, predictions


def v4_figures(rows: Rows, path: Path, predictions: dict[str, FloatArray]) -> dict[str, Any]:
    """v4's out-of-fold answers (with and without titles) on the project's rows, and their
    paired differences from the baselines on the same rows (artist-clustered SEs)."""
    validation = CrossValidation.load(path)
    if not np.array_equal(validation.labels, rows.labels):
        raise ValueError(f"{path}: not the out-of-fold answers of these rows")
    order = np.argsort(validation.rows)
    result: dict[str, Any] = {}
    for name, titles in (("v4", True), ("v4_no_title", False)):
        answers = validation.probabilities(titles=titles)[order].astype(np.float64)
        if not np.array_equal(np.sort(validation.rows), np.arange(len(rows.labels))):
            raise ValueError(f"{path}: does not cover every row")
        result[name] = figures(rows, answers)
        mine = row_scores(answers.astype(np.float32), rows.labels)
        for key, other in predictions.items():
            theirs = row_scores(other.astype(np.float32), rows.labels)
            difference, error = clustered_mean(mine["correct"] - theirs["correct"], rows.artists)
            result[name][f"minus_{key}"] = {"accuracy": difference, "accuracy_se": error}
    return result


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Where the points go: HGB baseline against spotify11-mlp (#25)",
        "",
        f"Command: `{report['command']}`. Load average while it ran: {report['load_average']}.",
        "",
        "Every row: artist-grouped 5-fold cross-validation, each row scored by a model that never "
        "saw its artist and judged by its own label. Accuracy ± artist-clustered standard error "
        "(range over the folds); log-loss and top-3 over all rows; then accuracy on the rows of "
        "tracks with one genre, counting any genre of the track, on the rows of the four genres "
        "the file gives only in minutes, and the share of answers naming one of those four.",
    ]
    for protocol, title in (
        ("issue", "The issue's protocol: GroupKFold on Artist Name, the file's 15,252 rows"),
        ("project", "The project's protocol: v4's artist folds (seed 0), 15,150 distinct rows"),
    ):
        lines += ["", f"## {title}", "", _header()]
        for key, values in report[protocol].items():
            lines.append(_row(values.get("change", key), values))
    lines += ["", "## Durations by genre in the shared train.csv", ""]
    lines += ["| genre | in milliseconds | in minutes |", "|---|---|---|"]
    lines += [f"| {u['genre']} | {u['milliseconds']} | {u['minutes']} |" for u in report["units"]]
    return "\n".join(lines) + "\n"


def _header() -> str:
    return (
        "| change | accuracy | log-loss | top-3 | one genre | any label | minutes-only genres "
        "| answers naming them |\n|---|---|---|---|---|---|---|---|"
    )


def _row(change: str, v: dict[str, Any]) -> str:
    low, high = v["accuracy_folds"]
    paired = "".join(
        f"; {key[6:]}: {100 * d['accuracy']:+.1f} ± {100 * d['accuracy_se']:.1f}"
        for key, d in v.items()
        if key.startswith("minus_")
    )
    return (
        f"| {change}{' (vs' + paired[1:] + ')' if paired else ''} "
        f"| {100 * v['accuracy']:.1f}% ± {100 * v['accuracy_se']:.1f} "
        f"({100 * low:.1f}-{100 * high:.1f}) | {v['log_loss']:.3f} "
        f"| {100 * v['top3_accuracy']:.1f}% "
        f"| {100 * v['accuracy_single_genre']:.1f}% | {100 * v['accuracy_any_label']:.1f}% "
        f"| {100 * v['accuracy_minutes_only_genres']:.1f}% "
        f"| {100 * v['predicted_minutes_only_genres']:.1f}% |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spotify_gap_cli", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="train.csv or its directory")
    parser.add_argument("--out", type=Path, required=True, help="where the files go")
    parser.add_argument("--v4-cv", type=Path, help="v4's --cv-save file (paired comparisons)")
    parser.add_argument("--no-progress", action="store_true")
    arguments = parser.parse_args(argv)
    progress = not arguments.no_progress
    train_csv = resolve_spotify11_csv(arguments.data)
    issue = issue_rows(train_csv)
    issue_results, _ = run_protocol(issue, ISSUE_STEPS, progress)
    project = project_rows(arguments.data)
    project_results, predictions = run_protocol(project, PROJECT_STEPS, progress)
    if arguments.v4_cv is not None:
        for name, values in v4_figures(project, arguments.v4_cv, predictions).items():
            change = "spotify11-mlp/4" + (" sent without titles" if "no_title" in name else "")
            project_results[name] = {"change": change, **values}
    report = {
        "command": " ".join(["python -m training.studies.spotify_gap_cli", *sys.argv[1:]]),
        "load_average": [round(value, 1) for value in os.getloadavg()],
        "issue": issue_results,
        "project": project_results,
        "units": unit_table(issue, SPOTIFY11_CLASSES),
    }
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "spotify_gap.json").write_text(json.dumps(report, indent=2) + "\n")
    (arguments.out / "spotify_gap.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
