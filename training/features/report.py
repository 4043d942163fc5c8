"""The evaluation report written beside each checkpoint: JSON, Markdown and three small plots.

matplotlib runs on the Agg backend (no display), and plots are rendered at a low DPI so each PNG
stays well under ~150 KB in the model repository.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

_DPI = 80


def build_files(report: Mapping[str, Any]) -> dict[str, bytes]:
    """``report`` (see ``training.features.pipeline``) -> ``{file name: bytes}`` for
    ``extra_files``."""
    labels: Sequence[str] = report["labels"]
    evaluation = report["evaluation"]
    return {
        "report.json": (json.dumps(report, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        "report.md": markdown(report).encode("utf-8"),
        "training_curves.png": _curves(report["history"]),
        "confusion_matrix.png": confusion_png(evaluation["confusion_matrix"], labels),
        "feature_importance.png": _importance(report["feature_importance"]),
    }


def markdown(report: Mapping[str, Any]) -> str:
    evaluation = report["evaluation"]
    calibration = report["calibration"]
    lines = [
        f"# {report['name']}: {report['dataset']} feature MLP",
        "",
        f"**Split protocol.** {report['split_protocol']}",
        "",
        f"Evaluated on {evaluation['rows']} rows ({report['evaluated_on']}).",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key in ("accuracy", "macro_f1", "top3_accuracy", "log_loss", "ece"):
        lines.append(f"| {key} | {evaluation[key]:.4f} |")
    headline = {key: evaluation[key] for key in ("accuracy", "log_loss", "top3_accuracy")}
    lines += _populations({**headline, **(report.get("all_rows") or {})})
    lines += [
        "",
        f"Temperature {calibration['temperature']:.3f} (fitted on the validation part): ECE "
        f"{calibration['ece_before']:.4f} before, {calibration['ece_after']:.4f} after, "
        f"measured on the evaluated rows.",
        "",
        "## Per class",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, values in evaluation["per_class"].items():
        lines.append(
            f"| {name} | {values['precision']:.3f} | {values['recall']:.3f} | "
            f"{values['f1']:.3f} | {values['support']} |"
        )
    ranked = sorted(
        report["feature_importance"].items(), key=lambda item: -item[1]["accuracy_drop"]
    )
    lines += [
        "",
        "## Permutation importance (top 10, accuracy drop)",
        "",
        "| feature | accuracy drop | log-loss rise |",
        "|---|---|---|",
    ]
    for name, values in ranked[:10]:
        lines.append(f"| {name} | {values['accuracy_drop']:.4f} | {values['log_loss_rise']:.4f} |")
    lines += [
        "",
        "## Data",
        "",
        f"Load report: `{json.dumps(report['data_report'], sort_keys=True)}`",
        "",
        f"Training: best epoch {report['best_epoch']} of {report['epochs_run']} run; "
        f"hyper-parameters `{json.dumps(report['hyperparameters'], sort_keys=True)}`.",
        "",
    ]
    return "\n".join(lines)


# (row label, accuracy key, log-loss key, top-3 key) of the populations table; "" where none.
_POPULATIONS = (
    ("tracks with one genre", "accuracy", "log_loss", "top3_accuracy"),
    ("all rows", "accuracy_all_rows", "log_loss_all_rows", "top3_accuracy_all_rows"),
    ("all rows, any genre of the track", "accuracy_any_label", "", ""),
    ("rows of tracks with two or more genres", "accuracy_ambiguous_rows", "", ""),
)


def _populations(metrics: Mapping[str, float]) -> list[str]:
    """Accuracy, log-loss and top-3 per population of rows, given the title and without it
    (when the run has a title member), from the run's all-rows figures."""
    if "accuracy_all_rows" not in metrics:
        return []
    suffixes = ("", "_no_title") if "accuracy_all_rows_no_title" in metrics else ("",)
    header = " | ".join(
        f"{kind}{' without title' if suffix else ''}"
        for suffix in suffixes
        for kind in ("accuracy", "log-loss", "top-3")
    )
    lines = ["", "## Populations of rows", "", f"| rows | {header} |"]
    lines.append("|---|" + "---|" * 3 * len(suffixes))
    for label, *keys in _POPULATIONS:
        cells = [
            _figure(metrics, f"{key}{suffix}" if key else "") for suffix in suffixes for key in keys
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _figure(metrics: Mapping[str, float], key: str) -> str:
    if key not in metrics:
        return ""
    return f"{metrics[key]:.4f}" if key.startswith("log_loss") else f"{metrics[key]:.2%}"


def png_bytes(figure: Any) -> bytes:
    """Renders and closes a matplotlib figure; the report PNGs are small on purpose."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=_DPI)
    plt.close(figure)
    return buffer.getvalue()


def _curves(history: Sequence[Mapping[str, Any]]) -> bytes:
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = [record["epoch"] for record in history]
    left.plot(epochs, [record["train_loss"] for record in history], label="train loss")
    valid = [record["valid_loss"] for record in history]
    if any(value is not None for value in valid):
        left.plot(epochs, valid, label="valid loss")
        right.plot(epochs, [record["valid_macro_f1"] for record in history], label="valid F1")
        right.plot(epochs, [record["valid_accuracy"] for record in history], label="valid acc")
    left.set_xlabel("epoch")
    right.set_xlabel("epoch")
    left.legend()
    right.legend()
    return png_bytes(figure)


def confusion_png(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], true_axis: str = "true"
) -> bytes:
    size = max(4.0, 0.45 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel(true_axis)
    for row, values in enumerate(matrix):
        for column, value in enumerate(values):
            axes.text(column, row, str(value), ha="center", va="center", fontsize=7)
    return png_bytes(figure)


def _importance(importance: Mapping[str, Mapping[str, float]]) -> bytes:
    ranked = sorted(importance.items(), key=lambda item: item[1]["accuracy_drop"])[-20:]
    figure, axes = plt.subplots(figsize=(6, max(2.5, 0.25 * len(ranked) + 1)))
    axes.barh(
        [name for name, _ in ranked],
        [values["accuracy_drop"] for _, values in ranked],
        xerr=[values["accuracy_drop_std"] for _, values in ranked],
    )
    axes.set_xlabel("accuracy drop when shuffled")
    axes.tick_params(axis="y", labelsize=7)
    return png_bytes(figure)
