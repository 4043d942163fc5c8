"""One audio run end to end: decode, split by track, fit the normalisation, train with early
stopping, calibrate, evaluate per track, refit, and publish a version with its report.

Protocol: the selection model trains on ``train`` tracks; ``valid`` tracks choose its epoch and
fit the temperature. With ``refit`` the shipped weights train again on ``train + valid`` for
that many epochs (same schedule, same normalisation, the valid temperature). Headline metrics
are the shipped model's on ``test`` tracks when a test part exists, else the selection model's
on ``valid`` (an estimate, labelled so). Every figure is per track (mean of the calibrated
window probabilities, as the server aggregates) unless it says ``window``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score

from modelcore.checkpoint import read_manifest, write_checkpoint
from modelcore.frontend import FrontEndConfig
from modelcore.manifest import Manifest
from training.audio.config import AudioRunConfig
from training.audio.data import (
    AudioDataset,
    IntArray,
    fingerprint,
    load_audio_dataset,
    split_tracks,
)
from training.audio.report import build_audio_files
from training.audio.train import (
    AudioTrainResult,
    EvalWindows,
    SpectrogramBank,
    track_probabilities,
    train_audio_model,
    window_logits,
)
from training.evaluate import classification_metrics, expected_calibration_error, log_loss
from training.fitting import fit_temperature, resolve_device
from training.provenance import code_version
from training.splits import Split

_GTZAN_TRACK = re.compile(r"^([a-z]+)\.\d{5}$")


@dataclass(frozen=True)
class AudioRunOutcome:
    directory: Path
    manifest: Manifest
    report: dict[str, Any]


def evaluate_tracks(
    model: torch.nn.Module,
    windows: EvalWindows,
    temperature: float,
    label_names: tuple[str, ...],
) -> dict[str, Any]:
    """Track metrics from the mean of calibrated window probabilities, plus window figures."""
    logits = window_logits(model, windows.spectrograms)
    calibrated = torch.softmax(logits / temperature, dim=1)
    raw = torch.softmax(logits, dim=1)
    tracks = track_probabilities(calibrated, windows.window_track, len(windows.labels))
    raw_tracks = track_probabilities(raw, windows.window_track, len(windows.labels))
    window_labels = windows.window_labels
    result = classification_metrics(tracks, windows.labels, label_names)
    # Macro-F1 over the classes the evaluated tracks hold or the model predicts: a class with
    # no track on this side (GTZAN valid has no hiphop, pop or reggae) says nothing about it.
    predicted = tracks.argmax(axis=1)
    present = sorted(set(windows.labels.tolist()) | set(predicted.tolist()))
    result["macro_f1"] = float(
        f1_score(windows.labels, predicted, labels=present, average="macro", zero_division=0.0)
    )
    result["macro_f1_classes"] = [label_names[c] for c in present]
    result.update(
        tracks=len(windows.labels),
        windows=len(window_labels),
        window_accuracy=float((calibrated.argmax(dim=1).numpy() == window_labels).mean()),
        window_log_loss=log_loss(calibrated.numpy(), window_labels),
        window_ece=expected_calibration_error(calibrated.numpy(), window_labels),
        window_ece_uncalibrated=expected_calibration_error(raw.numpy(), window_labels),
        track_log_loss_uncalibrated=log_loss(raw_tracks, windows.labels),
        track_probabilities=tracks.tolist(),
    )
    return result


def run_audio(config: AudioRunConfig, progress: bool = True) -> AudioRunOutcome:
    version = code_version()  # the code that runs, before anyone edits the tree mid-run
    dataset = load_audio_dataset(config.data, config.sample_rate, progress=progress)
    split = split_tracks(
        dataset, config.splits_dir, config.valid_fraction, config.test_fraction, config.train.seed
    )
    base = FrontEndConfig(
        sample_rate=config.sample_rate,
        n_mels=config.n_mels,
        window_seconds=config.window_seconds,
        default_hop_seconds=config.hop_seconds,
        f_max=config.sample_rate / 2,
    )
    raw_bank = SpectrogramBank.build(dataset.waveforms, base, progress=progress)
    mean, std = raw_bank.statistics(split.train.tolist())
    front_end = replace(base, mean=mean, std=std)
    bank = raw_bank.normalised(mean, std)
    del raw_bank
    hop = round(config.hop_seconds * config.sample_rate)

    def windows_of(tracks: IntArray, hop_samples: int = hop) -> EvalWindows:
        waveforms = [dataset.waveforms[t] for t in tracks]
        return EvalWindows.build(waveforms, dataset.labels[tracks], front_end, hop_samples)

    classes = len(dataset.label_names)
    common = (classes, std, config.model, config.train, config.augment)
    # Epoch selection scores non-overlapping windows (half the cost per epoch); the reported
    # figures and the temperature use the overlapping windows.
    selection = train_audio_model(
        bank,
        split.train,
        dataset.labels,
        *common,
        held_out=windows_of(split.valid, front_end.window_samples),
        progress=progress,
    )
    valid = windows_of(split.valid)
    # Valid tracks of classes the train part lacks are wrong whatever the scale: they would
    # only push the temperature up, so it is fitted on windows of the classes trained on.
    trained_classes = np.unique(dataset.labels[split.train])
    logits = window_logits(selection.model, valid.spectrograms)
    covered = np.isin(valid.window_labels, trained_classes)
    temperature = fit_temperature(logits[covered], valid.window_labels[covered])
    valid_metrics = evaluate_tracks(selection.model, valid, temperature, dataset.label_names)
    valid_metrics["covered_classes"] = covered_figures(valid_metrics, valid.labels, trained_classes)
    valid_metrics["track_ids"] = dataset.track_ids[split.valid].tolist()
    shipped = selection
    if config.refit:
        both = np.sort(np.concatenate([split.train, split.valid]))
        shipped = train_audio_model(
            bank,
            both,
            dataset.labels,
            *common,
            fixed_epochs=selection.best_epoch,
            progress=progress,
        )
    test_metrics = None
    if len(split.test):
        test_metrics = evaluate_tracks(
            shipped.model, windows_of(split.test), temperature, dataset.label_names
        )
        test_metrics["track_ids"] = dataset.track_ids[split.test].tolist()
        shipped_tracks = np.concatenate([split.train, split.valid]) if config.refit else split.train
        test_metrics["covered_classes"] = covered_figures(
            test_metrics, dataset.labels[split.test], np.unique(dataset.labels[shipped_tracks])
        )
    headline = test_metrics if test_metrics is not None else valid_metrics
    protocol = split_protocol(dataset, split, config, selection, test_metrics is not None)
    report = {
        "name": config.name,
        "dataset": dataset_name(dataset),
        "labels": list(dataset.label_names),
        "split_protocol": protocol,
        "evaluated_on": "test" if test_metrics is not None else "valid",
        "split_sizes": split_sizes(dataset, split),
        "evaluation": headline,
        "valid_evaluation": valid_metrics,
        "calibration": calibration_entry(temperature, headline),
        "history": [asdict(record) for record in selection.history],
        "best_epoch": selection.best_epoch,
        "epochs_run": selection.epochs_run,
        "shipped_epochs": shipped.best_epoch,
        "hyperparameters": config.hyperparameters(),
        "parameters": sum(p.numel() for p in shipped.model.parameters()),
    }
    manifest = build_manifest(config, dataset, split, front_end, shipped, report, version)
    directory = write_checkpoint(
        config.out, manifest, shipped.model.state_dict(), extra_files=build_audio_files(report)
    )
    return AudioRunOutcome(directory, read_manifest(directory), report)


def covered_figures(
    metrics: dict[str, Any], labels: IntArray, trained_classes: IntArray
) -> dict[str, Any]:
    """Track accuracy restricted to classes the evaluated model had training tracks of."""
    predictions = np.asarray(metrics["track_probabilities"]).argmax(axis=1)
    rows = np.isin(labels, trained_classes)
    return {
        "tracks": int(rows.sum()),
        "track_accuracy": float((predictions[rows] == labels[rows]).mean()) if rows.any() else 0.0,
        "classes": [int(c) for c in trained_classes],
    }


def calibration_entry(temperature: float, evaluation: dict[str, Any]) -> dict[str, Any]:
    return {
        "temperature": temperature,
        "fitted_on": "valid windows of the classes present in train",
        "applies_to": "window logits; track = mean of calibrated window probabilities",
        "ece_before": evaluation["window_ece_uncalibrated"],
        "ece_after": evaluation["window_ece"],
    }


def dataset_name(dataset: AudioDataset) -> str:
    """``gtzan-audio`` for GTZAN-named files (``<genre>/<genre>.000NN``), else ``audio-folder``."""
    for track, label in zip(dataset.track_ids, dataset.labels, strict=True):
        match = _GTZAN_TRACK.match(str(track))
        if match is None or match.group(1) != dataset.label_names[int(label)]:
            return "audio-folder"
    return "gtzan-audio"


def split_sizes(dataset: AudioDataset, split: Split) -> dict[str, Any]:
    sizes: dict[str, Any] = {"outside": split.rows_outside}
    for part in ("train", "valid", "test"):
        tracks = getattr(split, part)
        counts = np.bincount(dataset.labels[tracks], minlength=len(dataset.label_names))
        sizes[part] = {
            "tracks": len(tracks),
            "per_class": dict(zip(dataset.label_names, counts.tolist(), strict=True)),
        }
    return sizes


def split_protocol(
    dataset: AudioDataset,
    split: Split,
    config: AudioRunConfig,
    selection: AudioTrainResult,
    on_test: bool,
) -> str:
    window = f"{config.window_seconds:g}-s windows, hop {config.hop_seconds:g} s"
    text = (
        f"Tracks split by {split.method}; no track has windows on two sides. A CNN-LSTM trained "
        f"on random {config.window_seconds:g}-s crops of {len(split.train)} train tracks; "
        f"epoch (best {selection.best_epoch} of {selection.epochs_run}) chosen by track accuracy "
        f"(non-overlapping windows) and temperature fitted on {len(split.valid)} valid tracks "
        f"({window}; track = mean of window probabilities)"
    )
    missing = sorted(
        set(np.unique(dataset.labels[split.valid]).tolist())
        - set(np.unique(dataset.labels[split.train]).tolist())
    )
    if missing:
        names = ", ".join(dataset.label_names[c] for c in missing)
        text += f"; valid holds classes with no train track ({names}), always wrong there"
    if split.rows_outside:
        text += f"; {split.rows_outside} tracks on no list unused"
    if config.refit:
        text += (
            f"; shipped weights retrained on train+valid ({len(split.train) + len(split.valid)} "
            f"tracks, all classes) for {selection.best_epoch} epochs with the valid temperature"
        )
    if on_test:
        text += f"; metrics are the shipped model's on {len(split.test)} held-out test tracks."
    else:
        text += (
            "; metrics are the train-only selection model's on valid (an estimate: valid also "
            "chose the epoch and temperature; no test tracks here)."
        )
    return text


def build_manifest(
    config: AudioRunConfig,
    dataset: AudioDataset,
    split: Split,
    front_end: FrontEndConfig,
    shipped: AudioTrainResult,
    report: dict[str, Any],
    version: str,
) -> Manifest:
    """The draft manifest of an audio run (``write_checkpoint`` adds version and weights)."""
    evaluation = report["evaluation"]
    metrics: dict[str, Any] = {
        "split_protocol": report["split_protocol"],
        "evaluated_on": report["evaluated_on"],
        "track_accuracy": evaluation["accuracy"],
        "window_accuracy": evaluation["window_accuracy"],
        "track_macro_f1": evaluation["macro_f1"],
        "track_log_loss": evaluation["log_loss"],
        "track_top3_accuracy": evaluation["top3_accuracy"],
        "track_ece": evaluation["ece"],
        "window_log_loss": evaluation["window_log_loss"],
        "evaluated_tracks": evaluation["tracks"],
    }
    if "covered_classes" in evaluation:
        covered = evaluation["covered_classes"]
        metrics["track_accuracy_trained_classes"] = covered["track_accuracy"]
        metrics["evaluated_tracks_trained_classes"] = covered["tracks"]
    files = (*dataset.files, *split.sources)
    audio_schema = {
        key: value for key, value in front_end.to_dict().items() if key not in ("mean", "std")
    }
    audio_schema.update(window_samples=front_end.window_samples, channels="mono (down-mixed)")
    return Manifest(
        name=config.name,
        kind="audio",
        architecture=shipped.architecture,
        labels=tuple(dataset.label_names),
        frontend=front_end.to_dict(),
        input_schema={"audio": audio_schema, "aggregation": "mean of window probabilities"},
        calibration=report["calibration"],
        metrics=metrics,
        training={
            "dataset": report["dataset"],
            "data_root": str(dataset.root),
            "data_files": len(files),
            "audio_seconds": round(dataset.seconds, 1),
            "data_fingerprint": fingerprint(dataset.root.parent, files),
            "code_version": version,
            "hyperparameters": config.hyperparameters(),
            "seed": config.train.seed,
            "epochs": report["shipped_epochs"],
            "best_epoch": report["best_epoch"],
            "epochs_run": report["epochs_run"],
            "device": str(resolve_device(config.train.device)),
            "torch_threads": torch.get_num_threads(),
            "split_sizes": report["split_sizes"],
            "parameters": report["parameters"],
        },
    )
