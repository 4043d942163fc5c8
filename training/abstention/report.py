"""The files a version with abstention carries: the base version's genre reports (the genre
model is the same), ``abstention.json`` and ``abstention.md`` with every figure and its
protocol, and a plot of the threshold's trade-off."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from modelcore.manifest import Manifest
from training.features.report import png_bytes

BASE_FILES = ("report.md", "report.json", "confusion_matrix.png", "nested_confusion_matrix.png")


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def markdown(manifest: Manifest, figures: Mapping[str, Any]) -> str:
    music, other, chosen = figures["music"], figures["non_music"], figures["chosen"]
    rows = [
        "| audio | clips | windows abstained | clips (track answers) abstained |",
        "|---|---|---|---|",
    ]
    for kind, entry in other["by_kind"].items():
        rows.append(
            f"| {kind} | {entry['clips']} | {_percent(entry['windows_abstained'])} | "
            f"{_percent(entry['tracks_abstained'])} |"
        )
    reasons = ", ".join(
        f"{reason} {_percent(value)}"
        for reason, value in music["window"].items()
        if reason not in ("answered", "refused")
    )
    return "\n".join(
        [
            f"# {manifest.name}: when it abstains",
            "",
            manifest.metrics.get("split_protocol", ""),
            "",
            f"Default `min_probability` {chosen['min_probability']:.2f}, music threshold "
            f"{manifest.music_threshold:g}, silence under the server's threshold.",
            "",
            f"**Valid music** ({music['tracks']} tracks, {music['windows']} windows): "
            f"{_percent(music['window']['refused'])} of windows refused ({reasons}); "
            f"{_percent(music['track']['refused'])} of tracks refused. Track accuracy "
            f"{_percent(music['track_accuracy_all'])} over all tracks, "
            f"{_percent(music['track_accuracy_answered'])} over the answered ones.",
            "",
            f"**Valid non-music** ({other['clips']} clips of 12 s, {other['windows']} windows): "
            f"{_percent(other['window_abstained'])} of windows and "
            f"{_percent(other['track_abstained'])} of clips abstained.",
            "",
            *rows,
            "",
        ]
    )


def curve_png(curve: list[Mapping[str, float]], chosen: float) -> bytes:
    figure, axes = plt.subplots(figsize=(5.5, 3.5))
    thresholds = [point["min_probability"] for point in curve]
    axes.plot(thresholds, [point["answered"] for point in curve], label="windows answered")
    axes.plot(thresholds, [point["precision"] for point in curve], label="precision of answered")
    axes.axvline(chosen, color="grey", linestyle="--", label=f"default {chosen:.2f}")
    axes.set_xlabel("min_probability")
    axes.set_ylim(0, 1.02)
    axes.legend(fontsize=8)
    axes.set_title("valid music windows (members that never saw them)", fontsize=9)
    return png_bytes(figure)


def build_files(base: Path, manifest: Manifest, figures: Mapping[str, Any]) -> dict[str, bytes]:
    files = {name: (base / name).read_bytes() for name in BASE_FILES if (base / name).is_file()}
    files["abstention.json"] = (json.dumps(figures, indent=2, sort_keys=True) + "\n").encode()
    files["abstention.md"] = markdown(manifest, figures).encode("utf-8")
    files["abstention_threshold.png"] = curve_png(
        figures["precision_curve"], figures["chosen"]["min_probability"]
    )
    return files
