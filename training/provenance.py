"""Where a model came from: the code commit that trained it."""

from __future__ import annotations

import subprocess
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def code_version(root: Path = _PACKAGE_ROOT) -> str:
    """``git`` HEAD of the checkout, with ``-dirty`` when ``training/`` has uncommitted changes.

    Only ``training/`` counts towards dirtiness: it is all the code a training run executes, and
    other people's work in progress elsewhere in the tree does not change a model.
    """
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "training"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if status else head
