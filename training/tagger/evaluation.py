"""The ensemble's figures on the valid list: with the choices made there, from tracks that
chose nothing (nested halves), and each member on its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.common import FloatArray, IntArray
from training.evaluate import classification_metrics, expected_calibration_error, log_loss
from training.tagger.fusion import (
    Fusion,
    MemberWindows,
    choose_fusion,
    fit_track_temperature,
    softmax,
    track_means,
)


@dataclass(frozen=True)
class EnsembleEvaluation:
    """``valid``: the ensemble chosen and calibrated on all valid tracks, scored on them (an
    optimistic estimate); ``nested``: each half scored by choices made on the other;
    ``members``: each member alone on valid (train-only fits, temperature 1)."""

    choice: Fusion
    temperature: float
    valid: dict[str, Any]
    nested: dict[str, Any]
    members: dict[str, dict[str, Any]]
    halves: tuple[int, int]
    trained_classes: tuple[int, ...]


def per_genre(predictions: IntArray, labels: IntArray, names: Sequence[str]) -> dict[str, Any]:
    """Genre -> {correct, tracks, accuracy} for the genres present."""
    result = {}
    for index in np.unique(labels):
        rows = labels == index
        correct = int((predictions[rows] == index).sum())
        result[names[index]] = {
            "correct": correct,
            "tracks": int(rows.sum()),
            "accuracy": correct / int(rows.sum()),
        }
    return result


def _covered(tracks: FloatArray, labels: IntArray, trained: IntArray) -> dict[str, Any]:
    """Figures over the tracks of genres the members had training audio of."""
    rows = np.isin(labels, trained)
    return {
        "tracks": int(rows.sum()),
        "track_accuracy": float((tracks[rows].argmax(axis=1) == labels[rows]).mean()),
        "track_log_loss": log_loss(tracks[rows], labels[rows]),
    }


def track_report(
    window_probabilities: FloatArray,
    windows: MemberWindows,
    trained: IntArray,
    names: Sequence[str],
) -> dict[str, Any]:
    """Track and window figures of calibrated window probabilities on every valid track."""
    tracks = track_means(window_probabilities, windows.window_track, len(windows.track_labels))
    labels = windows.track_labels
    window_labels = labels[windows.window_track]
    result = classification_metrics(tracks, labels, names)
    predictions = tracks.argmax(axis=1)
    result.update(
        tracks=len(labels),
        windows=len(window_labels),
        per_genre=per_genre(predictions, labels, names),
        covered_classes=_covered(tracks, labels, trained),
        window_accuracy=float((window_probabilities.argmax(axis=1) == window_labels).mean()),
        window_log_loss=log_loss(window_probabilities, window_labels),
        window_ece=expected_calibration_error(window_probabilities, window_labels),
        track_probabilities=tracks.tolist(),
    )
    return result


def _nested(
    windows: MemberWindows,
    log_prior: FloatArray,
    covered: set[int],
    halves: tuple[list[int], list[int]],
    names: Sequence[str],
    trained: IntArray,
) -> dict[str, Any]:
    tracks = np.zeros((len(windows.track_labels), len(names)), dtype=np.float32)
    choices = []
    for choose, score in ((halves[0], halves[1]), (halves[1], halves[0])):
        choice = choose_fusion(windows, choose, log_prior)
        logits = windows.fused(choice, log_prior)
        temperature = fit_track_temperature(logits, windows, [t for t in choose if t in covered])
        means = track_means(softmax(logits, temperature), windows.window_track, len(tracks))
        tracks[score] = means[score]
        choices.append({**choice.__dict__, "temperature": temperature, "scored_tracks": len(score)})
    labels = windows.track_labels
    predictions = tracks.argmax(axis=1)
    return {
        "track_accuracy": float((predictions == labels).mean()),
        "track_log_loss": log_loss(tracks, labels),
        "track_ece": expected_calibration_error(tracks, labels),
        "tracks": len(labels),
        "per_genre": per_genre(predictions, labels, names),
        "covered_classes": _covered(tracks, labels, trained),
        "confusion_matrix": classification_metrics(tracks, labels, names)["confusion_matrix"],
        "choices": choices,
    }


def evaluate_choices(
    windows: MemberWindows,
    log_prior: FloatArray,
    trained: IntArray,
    halves: tuple[list[int], list[int]],
    names: Sequence[str],
) -> EnsembleEvaluation:
    """Chooses on all valid tracks (what ships), then the nested and per-member figures."""
    everything = list(range(len(windows.track_labels)))
    covered = {t for t in everything if windows.track_labels[t] in set(trained.tolist())}
    choice = choose_fusion(windows, everything, log_prior)
    logits = windows.fused(choice, log_prior)
    temperature = fit_track_temperature(logits, windows, sorted(covered))
    valid = track_report(softmax(logits, temperature), windows, trained, names)
    valid["track_log_loss_uncalibrated"] = log_loss(
        track_means(softmax(logits), windows.window_track, len(everything)), windows.track_labels
    )
    members = {
        "cnn_lstm": track_report(softmax(windows.cnn), windows, trained, names),
        "tagger_head": track_report(softmax(windows.head[choice.c]), windows, trained, names),
    }
    for report in members.values():
        del report["track_probabilities"]
    return EnsembleEvaluation(
        choice=choice,
        temperature=temperature,
        valid=valid,
        nested=_nested(windows, log_prior, covered, halves, names, trained),
        members=members,
        halves=(len(halves[0]), len(halves[1])),
        trained_classes=tuple(int(c) for c in trained),
    )
