"""The files a version with abstention carries: the base version's genre reports (the genre
model is the same), ``abstention.json`` and ``abstention.md`` with every figure and its
protocol (clean and per codec), a plot of the threshold's trade-off, and one of the figures per
codec."""

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
            *codec_table(figures),
        ]
    )


def codec_table(figures: Mapping[str, Any]) -> list[str]:
    """Per codec: valid music refused and valid non-music abstained, the same protocol."""
    if "codecs" not in figures:
        return []
    lines = [
        "## Per codec",
        "",
        "The same valid music and non-music after each codec's round trip (encoded, decoded, "
        "resampled by the server's resampler), under the same policy; coded clips' windows "
        f"{figures['codec_settings']['coded_hop_seconds']:g} s apart (uncoded: the served hop). "
        "Music is measured in each codec at a common bitrate.",
        "",
        "| codec | music windows refused | music tracks refused | non-music windows abstained "
        "| non-music clips abstained | speech clips abstained |",
        "|---|---|---|---|---|---|",
    ]
    for label, entry in figures["codecs"].items():
        other = entry["non_music"]
        speech = other["by_kind"].get("speech", {}).get("tracks_abstained", float("nan"))
        if "music" in entry:
            music = entry["music"]
            cells = (
                f"{_percent(music['window']['refused'])} | {_percent(music['track']['refused'])}"
            )
        else:
            cells = "(not measured) | (not measured)"
        lines.append(
            f"| {label} | {cells} | {_percent(other['window_abstained'])} | "
            f"{_percent(other['track_abstained'])} | {_percent(speech)} |"
        )
    worst = figures["worst_codec"]
    lines += [
        "",
        f"Worst codec: music windows refused {_percent(worst['music_windows_refused']['value'])} "
        f"({worst['music_windows_refused']['codec']}); non-music clips abstained "
        f"{_percent(worst['non_music_clips_abstained']['value'])} "
        f"({worst['non_music_clips_abstained']['codec']}).",
        "",
    ]
    return lines


def codecs_png(by_codec: Mapping[str, Mapping[str, Any]], budget: float) -> bytes:
    """Music refused and non-music answered per codec, windows and clips: both should be 0."""
    labels = list(by_codec)
    positions = range(len(labels))
    figure, (refused, answered) = plt.subplots(1, 2, figsize=(9, 0.35 * len(labels) + 1.6))
    for axes, section, key, title in (
        (refused, "music", "refused", "valid music refused"),
        (answered, "non_music", "", "valid non-music answered"),
    ):
        if section == "music":
            nan = {"window": {key: float("nan")}, "track": {key: float("nan")}}
            music = [by_codec[label].get("music", nan) for label in labels]
            windows = [100 * entry["window"][key] for entry in music]
            tracks = [100 * entry["track"][key] for entry in music]
            axes.axvline(100 * budget, color="grey", linestyle="--", label="budget")
        else:
            windows = [
                100 * (1 - by_codec[label]["non_music"]["window_abstained"]) for label in labels
            ]
            tracks = [
                100 * (1 - by_codec[label]["non_music"]["track_abstained"]) for label in labels
            ]
        axes.barh([p + 0.2 for p in positions], windows, height=0.4, label="windows")
        axes.barh([p - 0.2 for p in positions], tracks, height=0.4, label="clips")
        axes.set_yticks(list(positions), labels if section == "music" else [""] * len(labels))
        axes.invert_yaxis()
        axes.set_xlabel("%")
        axes.set_title(title, fontsize=9)
        axes.legend(fontsize=7)
    figure.tight_layout()
    return png_bytes(figure)


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
    if "codecs" in figures:
        budget = float(manifest.training["abstention"].get("refusal_budget", 0.01))
        files["abstention_codecs.png"] = codecs_png(figures["codecs"], budget)
    return files
