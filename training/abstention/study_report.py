"""The abstention study's Markdown and plot: per set of clips, the share answered as wanted,
uncoded and in every codec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from training.features.report import png_bytes


def as_wanted(entry: Mapping[str, Any], figures: Mapping[str, Any]) -> float:
    """The share of clips whose track answer is what a caller wants of the set."""
    refused = float(figures["track"]["refused"])
    return refused if entry["wanted"] == "abstain" else 1 - refused


def _table(
    title: str, sets: Mapping[str, Any], labels: list[str], cell: Any, wanted: bool
) -> list[str]:
    """One Markdown table: a row per set, a column per codec, ``cell(entry, figures)``."""
    head = "| set | wanted | clips | " if wanted else "| set | "
    lines = ["", f"## {title}", "", head + " | ".join(labels) + " |"]
    lines.append("|---|" + ("---|---|" if wanted else "") + "---|" * len(labels))
    for name, entry in sets.items():
        cells = [cell(entry, entry["codecs"][label]) for label in labels]
        first = f"| {name} | {entry['wanted']} | {entry['clips']} | " if wanted else f"| {name} | "
        lines.append(first + " | ".join(cells) + " |")
    return lines


def markdown(result: Mapping[str, Any]) -> str:
    sets: Mapping[str, Any] = result["sets"]
    labels = list(next(iter(sets.values()))["codecs"]) if sets else []
    lines = [
        f"# Abstention on sound nothing was chosen with ({result['version']})",
        "",
        f"Policy: {result['policy']}. Clips of 12 s (mixtures longer). Each codec's copy "
        "encoded, decoded and resampled by the server's resampler; "
        "`python -m training.abstention.study`. Test voices, fresh seeds; music from the valid "
        "list. Uncoded: windows at the served hop, every valid track; in each codec: windows "
        "3 s apart, every third track.",
        *_table(
            "Clips answered as wanted", sets, labels,
            lambda entry, figures: f"{100 * as_wanted(entry, figures):.1f}%", True,
        ),
        *_table(
            "Windows abstained", sets, labels,
            lambda entry, figures: f"{100 * figures['window']['refused']:.1f}%", False,
        ),
    ]  # fmt: skip
    return "\n".join([*lines, ""])


def study_png(result: Mapping[str, Any]) -> bytes:
    """One row of points per set: the share of clips answered as wanted in each codec."""
    sets: Mapping[str, Any] = result["sets"]
    figure, axes = plt.subplots(figsize=(8, 0.4 * len(sets) + 1.8))
    labels = list(next(iter(sets.values()))["codecs"]) if sets else []
    for column, label in enumerate(labels):
        shares = [100 * as_wanted(entry, entry["codecs"][label]) for entry in sets.values()]
        offsets = [row + (column - len(labels) / 2) * 0.06 for row in range(len(sets))]
        axes.scatter(shares, offsets, s=14, label=label)
    axes.set_yticks(list(range(len(sets))), list(sets))
    axes.invert_yaxis()
    axes.set_xlabel("clips answered as wanted (%)")
    axes.legend(fontsize=6, loc="lower left", ncols=3)
    axes.set_title(f"abstention study, {result['version']}", fontsize=9)
    figure.tight_layout()
    return png_bytes(figure)
