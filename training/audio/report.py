"""The report written beside an audio checkpoint: JSON, Markdown with the split protocol, and
two small plots (training curves, track confusion matrix)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from training.features.report import confusion_png, png_bytes


def build_audio_files(report: Mapping[str, Any]) -> dict[str, bytes]:
    """``report`` (see ``training.audio.pipeline``) -> ``{file name: bytes}``."""
    evaluation = report["evaluation"]
    return {
        "report.json": (json.dumps(report, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        "report.md": markdown(report).encode("utf-8"),
        "training_curves.png": _curves(report["history"]),
        "confusion_matrix.png": confusion_png(
            evaluation["confusion_matrix"], report["labels"], "true (tracks)"
        ),
    }


def markdown(report: Mapping[str, Any]) -> str:
    evaluation = report["evaluation"]
    calibration = report["calibration"]
    lines = [
        f"# {report['name']}: CNN-LSTM on log-mel windows ({report['dataset']})",
        "",
        f"**Split protocol.** {report['split_protocol']}",
        "",
        f"Evaluated on the {report['evaluated_on']} part: {evaluation['tracks']} tracks, "
        f"{evaluation['windows']} windows. Model: {report['parameters']:,} parameters.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| track accuracy | {evaluation['accuracy']:.4f} |",
        f"| track macro-F1 | {evaluation['macro_f1']:.4f} |",
        f"| track top-3 accuracy | {evaluation['top3_accuracy']:.4f} |",
        f"| track log-loss | {evaluation['log_loss']:.4f} |",
        f"| window accuracy | {evaluation['window_accuracy']:.4f} |",
        f"| window log-loss | {evaluation['window_log_loss']:.4f} |",
    ]
    covered = evaluation.get("covered_classes")
    if covered:
        lines.append(
            f"| track accuracy, classes with train tracks ({covered['tracks']} tracks) | "
            f"{covered['track_accuracy']:.4f} |"
        )
    lines += [
        "",
        f"Temperature {calibration['temperature']:.3f} ({calibration['fitted_on']}): window ECE "
        f"{calibration['ece_before']:.4f} before, {calibration['ece_after']:.4f} after, on the "
        "evaluated windows.",
        "",
        "## Per class (tracks)",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, values in evaluation["per_class"].items():
        lines.append(
            f"| {name} | {values['precision']:.3f} | {values['recall']:.3f} | "
            f"{values['f1']:.3f} | {values['support']} |"
        )
    lines += ["", "## Data", "", "| part | tracks | per class |", "|---|---|---|"]
    for part in ("train", "valid", "test"):
        sizes = report["split_sizes"][part]
        per_class = ", ".join(f"{k} {v}" for k, v in sizes["per_class"].items() if v)
        lines.append(f"| {part} | {sizes['tracks']} | {per_class} |")
    lines += [
        "",
        f"Training: best epoch {report['best_epoch']} of {report['epochs_run']} run; shipped "
        f"weights trained for {report['shipped_epochs']} epochs; hyper-parameters "
        f"`{json.dumps(report['hyperparameters'], sort_keys=True)}`.",
        "",
    ]
    return "\n".join(lines)


def _curves(history: Sequence[Mapping[str, Any]]) -> bytes:
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = [record["epoch"] for record in history]
    left.plot(epochs, [record["train_loss"] for record in history], label="train loss")
    if any(record["valid_log_loss"] is not None for record in history):
        left.plot(epochs, [r["valid_log_loss"] for r in history], label="valid window log-loss")
        right.plot(epochs, [r["valid_track_accuracy"] for r in history], label="valid track acc")
        right.plot(epochs, [r["valid_window_accuracy"] for r in history], label="valid window acc")
    for axes in (left, right):
        axes.set_xlabel("epoch")
        axes.legend()
    return png_bytes(figure)
