"""``python -m training.studies.crossval_cli``: ``run`` a setting, ``compare`` saved runs, and the
``run``/``compare`` dispatch that the other cross-validation study shares; the library is
``training.features.crossval``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.features.crossval import CrossValidation, cross_validate, paired_difference


def _run(arguments: argparse.Namespace, rest: list[str]) -> int:
    from training.cli import build_parser, config_from_arguments
    from training.features.datasets import load_dataset

    features = build_parser().parse_args(["features", *rest])
    config = replace(config_from_arguments(features), importance_repeats=0)
    dataset = load_dataset(
        config.dataset, config.data, config.drop_bad_rows, config.genres, config.conflicts
    )
    only = [arguments.fold] if arguments.fold is not None else None
    result = cross_validate(dataset, config, arguments.folds, only, progress=False)
    result.save(arguments.save)
    summary = result.summary()
    print(
        f"{arguments.save}: accuracy {summary['correct']:.4f} ± {summary['correct_se']:.4f}, "
        f"log-loss {summary['log_loss']:.4f} ± {summary['log_loss_se']:.4f} "
        f"({summary['rows']} rows, {summary['folds']} folds)"
    )
    return 0


def _compare(paths: Sequence[str]) -> int:
    """The first argument is the baseline; each is a ``.npz`` or a comma-joined list of fold
    files to merge."""
    results = [
        CrossValidation.merge([CrossValidation.load(Path(p)) for p in item.split(",")])
        for item in paths
    ]
    baseline = results[0]
    for item, result in zip(paths, results, strict=True):
        s = result.summary()
        line = (
            f"{item}: acc {100 * s['correct']:.2f} ± {100 * s['correct_se']:.2f}, "
            f"log-loss {s['log_loss']:.4f} ± {s['log_loss_se']:.4f}"
        )
        if result is not baseline:
            d = paired_difference(baseline, result)
            line += (
                f"; vs first: acc {100 * d['correct']:+.2f} ± {100 * d['correct_se']:.2f}, "
                f"log-loss {d['log_loss']:+.4f} ± {d['log_loss_se']:.4f}"
            )
        print(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.studies.crossval_cli", description=__doc__
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="cross-validate one setting (features flags follow)")
    run.add_argument("--folds", type=int, default=5)
    run.add_argument("--fold", type=int, help="run only this fold (for parallel runs)")
    run.add_argument("--save", type=Path, required=True, help="where the .npz goes")
    return run_or_compare(parser, commands, argv, _run, _compare)


def run_or_compare(
    parser: argparse.ArgumentParser,
    commands: Any,
    argv: Sequence[str] | None,
    run: Callable[[argparse.Namespace, list[str]], int],
    compare: Callable[[Sequence[str]], int],
) -> int:
    """The ``compare`` sub-command shared by the CV studies, then dispatch: ``run`` gets its own
    arguments and the unparsed rest (the ``genre-train features`` flags)."""
    compare_parser = commands.add_parser("compare", help="the first result against the others")
    compare_parser.add_argument("results", nargs="+")
    arguments, rest = parser.parse_known_args(argv)
    if arguments.command == "compare":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return compare(arguments.results)
    return run(arguments, rest)


if __name__ == "__main__":
    sys.exit(main())
