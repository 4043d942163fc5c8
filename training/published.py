"""What every ``genre-train`` command prints once it has published a version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def print_published(
    directory: Path, metrics: Mapping[str, Any], shown: Sequence[str] | None = None
) -> None:
    """Where the version went, the protocol of its figures, and the figures (``shown``, or
    every float metric)."""
    keys = shown if shown is not None else [k for k, v in metrics.items() if isinstance(v, float)]
    print(f"wrote {directory}")
    print(f"split: {metrics['split_protocol']}")
    print("metrics: " + ", ".join(f"{key}={metrics[key]:.4f}" for key in keys))
