"""The ensemble's manifest: every member, front-end and choice, and figures with their protocol."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from modelcore.checkpoint import Checkpoint
from modelcore.frontend import MusicnnFrontEndConfig
from modelcore.manifest import Manifest
from training.audio.data import AudioDataset, fingerprint
from training.audio.pipeline import split_sizes
from training.common import FloatArray
from training.splits import Split
from training.tagger.config import EnsembleRunConfig
from training.tagger.evaluation import EnsembleEvaluation
from training.tagger.fusion import PRIOR_GRID, WEIGHT_GRID
from training.tagger.head import C_GRID

COMMAND = (
    "genre-train audio --data ../shared/data --out /tmp/selection --no-refit; "
    "genre-train ensemble --data ../shared/data --cnn-lstm models/gtzan-cnn-lstm/2 "
    "--cnn-lstm-selection /tmp/selection/gtzan-cnn-lstm/1"
)


def split_protocol(
    evaluation: EnsembleEvaluation,
    split: Split,
    dataset: AudioDataset,
    shipped_cnn: Checkpoint,
    selection_cnn: Checkpoint,
) -> str:
    choice = evaluation.choice
    shipped = shipped_cnn.manifest
    chosen_epoch = selection_cnn.manifest.training.get("best_epoch")
    shipped_epochs = shipped.training.get("epochs")
    missing = sorted(
        set(np.unique(dataset.labels[split.valid]).tolist()) - set(evaluation.trained_classes)
    )
    absent = ", ".join(dataset.label_names[c] for c in missing)
    return (
        f"Tracks split by {split.method}; no track has windows on two sides. Members: the "
        f"CNN-LSTM and a logistic-regression head on the pretrained musicnn tagger's window "
        f"features (3-s windows, hop 1.5 s; track = mean of window probabilities). Chosen on the "
        f"{len(split.valid)} valid tracks with members fitted on the {len(split.train)} train "
        f"tracks only (the head on train windows; the CNN-LSTM a fresh train-only run of the "
        f"shipped member's command, best epoch {chosen_epoch} chosen on valid by that run, "
        f"where {shipped.name}/{shipped.version}'s own run chose {shipped_epochs}): the head's "
        f"regularisation c={choice.c:g}, the CNN-LSTM's weight {choice.cnn_weight:g}, prior "
        f"strength {choice.prior_strength:g} and the temperature; valid genres with no train "
        f"audio ({absent}) are always wrong there. track_accuracy and the other unprefixed "
        f"figures: that model on the valid tracks that chose it (optimistic). nested_*: from "
        f"tracks that chose nothing: the valid list dealt into halves ({evaluation.halves[0]} "
        f"and {evaluation.halves[1]} tracks, each genre split evenly, seed 0), each half scored "
        f"with choices and temperature made on the other, pooled over all {len(split.valid)}. "
        f"Shipped: the CNN-LSTM retrained on train+valid and the head refitted on train+valid "
        f"windows ({len(split.train) + len(split.valid)} tracks, all ten genres) with those "
        f"choices. No test tracks here."
    )


def _figures(report: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    return {
        f"{prefix}track_accuracy": report["accuracy"],
        f"{prefix}track_accuracy_trained_classes": report["covered_classes"]["track_accuracy"],
        f"{prefix}window_accuracy": report["window_accuracy"],
    }


def build_ensemble_manifest(
    config: EnsembleRunConfig,
    dataset: AudioDataset,
    split: Split,
    shipped_cnn: Checkpoint,
    selection_cnn: Checkpoint,
    provenance: dict[str, Any],
    evaluation: EnsembleEvaluation,
    prior: FloatArray,
    version: str,
    device: torch.device,
) -> Manifest:
    valid, nested = evaluation.valid, evaluation.nested
    choice = evaluation.choice
    metrics: dict[str, Any] = {
        "split_protocol": split_protocol(evaluation, split, dataset, shipped_cnn, selection_cnn),
        "evaluated_on": "valid",
        "evaluated_tracks": valid["tracks"],
        "evaluated_tracks_trained_classes": valid["covered_classes"]["tracks"],
        **_figures(valid),
        "track_log_loss": valid["log_loss"],
        "track_top3_accuracy": valid["top3_accuracy"],
        "track_macro_f1": valid["macro_f1"],
        "track_ece": valid["ece"],
        "window_log_loss": valid["window_log_loss"],
        "nested_evaluated_tracks": nested["tracks"],
        "nested_track_accuracy": nested["track_accuracy"],
        "nested_track_accuracy_trained_classes": nested["covered_classes"]["track_accuracy"],
        "nested_track_log_loss": nested["track_log_loss"],
        "nested_track_log_loss_trained_classes": nested["covered_classes"]["track_log_loss"],
        "track_log_loss_trained_classes": valid["covered_classes"]["track_log_loss"],
        "nested_track_ece": nested["track_ece"],
        **{f"track_accuracy_{g}": v["accuracy"] for g, v in valid["per_genre"].items()},
        **{f"nested_track_accuracy_{g}": v["accuracy"] for g, v in nested["per_genre"].items()},
        **_figures(evaluation.members["cnn_lstm"], "cnn_lstm_"),
        **_figures(evaluation.members["tagger_head"], "tagger_head_"),
    }
    cnn = shipped_cnn.manifest
    tagger_frontend = MusicnnFrontEndConfig().to_dict()
    shares = np.exp(prior)
    bias = -choice.prior_strength * prior  # the class_bias the shipped ensemble adds
    return Manifest(
        name=config.name,
        kind="audio",
        architecture={
            "type": "audio_ensemble",
            "params": {
                "num_classes": len(dataset.label_names),
                "cnn_lstm": dict(cnn.architecture["params"]),
                "tagger": {},
                "head_inputs": 250,
                "tagger_chunk": 2,
            },
            "inputs": [dict(cnn.frontend), tagger_frontend],
        },
        labels=tuple(dataset.label_names),
        frontend=dict(cnn.frontend),
        input_schema={
            **dict(cnn.input_schema),
            "front_ends": "each window: the CNN-LSTM's log-mel at 22,050 Hz and the tagger's "
            "log-compressed mel at 16 kHz (resampled from the window), both per batch on the "
            "serving device",
        },
        calibration={
            "temperature": evaluation.temperature,
            "fitted_on": "valid tracks of the genres with train audio (track log-loss)",
            "applies_to": "fused window logits; track = mean of calibrated window probabilities",
            "track_ece": valid["ece"],
        },
        members={
            "cnn_lstm": {
                "prefix": "cnn_lstm.",
                "role": "CNN-LSTM on log-mel windows (architecture.inputs[0])",
                "source": f"{cnn.name}/{cnn.version}",
                "source_weights_sha256": cnn.weights_sha256,
                "selection_model": {
                    "command": "genre-train audio --no-refit (same flags)",
                    "weights_sha256": selection_cnn.manifest.weights_sha256,
                    "best_epoch": selection_cnn.manifest.training.get("best_epoch"),
                },
                "fusion_weight": choice.cnn_weight,
            },
            "tagger": {
                "prefix": "tagger.",
                "role": "pretrained musicnn tagger, frozen (architecture.inputs[1])",
                "architecture": "modelcore.models.musicnn.Musicnn",
                "provenance": provenance,
                "converted_by": "training.tagger.convert (TensorBundle read without TensorFlow)",
            },
            "tagger_head": {
                "role": "logistic regression on the tagger's penultimate layer and 50 tag "
                "probabilities per window; tensors in the main weights file (head.*)",
                "c": choice.c,
                "fusion_weight": round(1 - choice.cnn_weight, 6),
            },
        },
        metrics=metrics,
        training={
            "command": COMMAND,
            "dataset": "gtzan-audio",
            "data_root": str(dataset.root),
            "data_fingerprint": fingerprint(dataset.root.parent, (*dataset.files, *split.sources)),
            "code_version": version,
            "hyperparameters": config.hyperparameters(),
            "grid": {"c": list(C_GRID), "cnn_weight": list(WEIGHT_GRID), "prior": list(PRIOR_GRID)},
            "choices": {**choice.__dict__, "temperature": evaluation.temperature},
            "nested_choices": nested["choices"],
            "class_prior": {
                "training_shares": dict(
                    zip(dataset.label_names, shares.round(4).tolist(), strict=True)
                ),
                "prior_strength": choice.prior_strength,
                "assumed": "the members' own prior (their training audio's genre shares) "
                "divided by shares^prior_strength: 0 keeps the training shares, 1 assumes "
                "every genre equally likely",
                "bias_per_genre": dict(
                    zip(dataset.label_names, bias.round(4).tolist(), strict=True)
                ),
            },
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "split_sizes": split_sizes(dataset, split),
        },
    )
