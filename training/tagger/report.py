"""The report beside an ensemble version: what each member and the whole scored on valid, with
the protocol of each figure, and the confusion matrices people would rather look at."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from modelcore.manifest import Manifest
from training.features.report import confusion_png
from training.tagger.evaluation import EnsembleEvaluation


def build_ensemble_files(manifest: Manifest, evaluation: EnsembleEvaluation) -> dict[str, bytes]:
    labels = list(manifest.labels)
    record = {
        "choice": evaluation.choice.__dict__,
        "temperature": evaluation.temperature,
        "valid": evaluation.valid,
        "nested": evaluation.nested,
        "members": evaluation.members,
    }
    return {
        "report.json": (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        "report.md": markdown(manifest, evaluation).encode("utf-8"),
        "confusion_matrix.png": confusion_png(
            evaluation.valid["confusion_matrix"], labels, "true (valid tracks)"
        ),
        "nested_confusion_matrix.png": confusion_png(
            evaluation.nested["confusion_matrix"], labels, "true (valid tracks, nested)"
        ),
    }


def _genre_cell(per_genre: Mapping[str, Any], genre: str) -> str:
    if genre not in per_genre:
        return "–"
    entry = per_genre[genre]
    return f"{entry['correct']}/{entry['tracks']}"


def markdown(manifest: Manifest, evaluation: EnsembleEvaluation) -> str:
    valid, nested, members = evaluation.valid, evaluation.nested, evaluation.members
    choice = evaluation.choice
    rows = [
        ("ensemble, nested (chose nothing)", nested),
        ("ensemble, valid chose it", valid),
        ("CNN-LSTM alone (train-only)", members["cnn_lstm"]),
        ("tagger head alone (train-only)", members["tagger_head"]),
    ]
    lines = [
        f"# {manifest.name}: CNN-LSTM + musicnn tagger ensemble (GTZAN audio)",
        "",
        f"**Split protocol.** {manifest.split_protocol}",
        "",
        f"Choices: head c={choice.c:g}, CNN-LSTM weight {choice.cnn_weight:g} (head "
        f"{1 - choice.cnn_weight:g}), prior strength {choice.prior_strength:g}, temperature "
        f"{evaluation.temperature:.3f}.",
        "",
        "## Valid tracks",
        "",
        "| model | track accuracy | genres with train audio | "
        + " | ".join(sorted(valid["per_genre"]))
        + " |",
        "|---|---|---|" + "---|" * len(valid["per_genre"]),
    ]
    for title, report in rows:
        accuracy = report.get("accuracy", report.get("track_accuracy"))
        covered = report["covered_classes"]
        cells = [_genre_cell(report["per_genre"], genre) for genre in sorted(valid["per_genre"])]
        lines.append(
            f"| {title} | {accuracy:.3f} | {covered['track_accuracy']:.3f} "
            f"({covered['tracks']}) | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        f"Ensemble with the valid list's choices: window accuracy {valid['window_accuracy']:.3f} "
        f"over {valid['windows']} windows; track log-loss {valid['log_loss']:.3f} "
        f"(uncalibrated {valid['track_log_loss_uncalibrated']:.3f}), track ECE "
        f"{valid['ece']:.3f}; nested track log-loss {nested['track_log_loss']:.3f}, ECE "
        f"{nested['track_ece']:.3f}.",
        "",
        "Nested choices per half: "
        + "; ".join(
            f"c={c['c']:g}, w={c['cnn_weight']:g}, prior {c['prior_strength']:g}, "
            f"T={c['temperature']:.2f} (scored {c['scored_tracks']} tracks)"
            for c in nested["choices"]
        )
        + ".",
        "",
        "## Members",
        "",
    ]
    for name, member in manifest.members.items():
        lines.append(f"- **{name}**: {member['role']}.")
    provenance = manifest.members["tagger"]["provenance"]
    lines += [
        "",
        f"Tagger weights: {provenance['package']} {provenance['version']} "
        f"({provenance['checkpoint']}), wheel sha256 `{provenance['wheel_sha256']}`, licence "
        f"{provenance['licence']}.",
        "",
        "Class prior: " + manifest.training["class_prior"]["assumed"] + ".",
        "",
    ]
    return "\n".join(lines)
