"""``python -m training.studies.restate_cli SOURCE TARGET``: a re-run's new figures added to a
published version with the same weights (``training.studies.restate``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from training.studies import restate
from training.studies.restate import copy_new_metrics


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.studies.restate_cli", description=restate.__doc__
    )
    parser.add_argument("source", type=Path, help="version directory with the new figures")
    parser.add_argument("target", type=Path, help="published version with the same weights")
    arguments = parser.parse_args(argv)
    try:
        added = copy_new_metrics(arguments.source, arguments.target)
    except ValueError as error:
        print(f"restate: {error}", file=sys.stderr)
        return 1
    print(f"{arguments.target}: added {', '.join(sorted(added)) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
