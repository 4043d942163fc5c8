"""``python -m training.studies.nested_cli``: the nested GTZAN estimate of a published version
(``training.studies.nested``), its figures added to the version's manifest.

    python -m training.studies.nested_cli --lists ../shared/data/gtzan/splits \\
        --into models/gtzan-features-mlp/1 features --dataset gtzan30 --data ../shared/data --seed 0
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from training.studies import nested
from training.studies.nested import run_nested


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.studies.nested_cli", description=nested.__doc__
    )
    parser.add_argument("--lists", type=Path, required=True, help="fault-filtered list folder")
    parser.add_argument("--into", type=Path, required=True, help="published version to annotate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the halving")
    parser.add_argument("kind", choices=("features", "audio"))
    arguments, flags = parser.parse_known_args(argv)
    figures = run_nested(arguments.kind, arguments.lists, arguments.into, flags, arguments.seed)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
