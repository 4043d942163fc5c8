"""One features run end to end: load, split, fit preprocessing, train, calibrate, evaluate,
refit, and publish a version with its manifest and report.

Protocol, the same for every dataset: the selection model is fitted on ``train`` with early
stopping and temperature on ``valid``. With ``refit`` the shipped weights are trained again on
``train + valid`` (preprocessing refitted on those rows) for the chosen epoch count, keeping the
validation temperature. Headline metrics come from the shipped model on ``test`` when a test
part exists; otherwise (GTZAN, whose test list is held out elsewhere) from the selection model
on ``valid``, which is an estimate and is labelled as such in ``split_protocol``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.checkpoint import write_checkpoint
from training.config import RunConfig
from training.datasets import fingerprint, load_dataset
from training.evaluate import classification_metrics, expected_calibration_error
from training.evaluate import permutation_importance as importance_of
from training.fitting import IMPUTATION_SPECS, fit_preprocessor
from training.preprocessing import FeaturePreprocessor
from training.provenance import code_version
from training.report import build_files
from training.splits import Split, group_split, read_split_lists, split_by_lists
from training.tabular import TabularDataset
from training.train import (
    FloatArray,
    IntArray,
    TrainResult,
    fit_temperature,
    logits_of,
    resolve_device,
    train_model,
)


@dataclass(frozen=True)
class RunOutcome:
    directory: Path
    manifest: dict[str, Any]
    report: dict[str, Any]


def fit_preprocessing(dataset: TabularDataset, rows: IntArray) -> FeaturePreprocessor:
    """The preprocessor for ``rows`` of ``dataset``: built from their features alone."""
    spec = IMPUTATION_SPECS[dataset.name]
    return fit_preprocessor(dataset.features[rows], dataset.feature_names, spec)


def make_split(dataset: TabularDataset, config: RunConfig) -> Split:
    """GTZAN: the filtered lists beside the CSV (or ``splits_dir``), else by track; Spotify: by
    artist. The grouping is checked, not trusted."""
    split: Split | None = None
    if dataset.name.startswith("gtzan"):
        directory = config.splits_dir or dataset.files[0].parent / "splits"
        lists = read_split_lists(directory)
        if lists is not None:
            sources = tuple(sorted(directory.glob("*_filtered.txt")))
            split = replace(split_by_lists(dataset.track_ids, lists), sources=sources)
    if split is None:
        split = group_split(
            dataset.groups, config.valid_fraction, config.test_fraction, config.train.seed
        )
    split.assert_grouped(dataset.groups)
    return split


def run_features(config: RunConfig, progress: bool = True) -> RunOutcome:
    dataset = load_dataset(config.dataset, config.data, config.drop_bad_rows, config.genres)
    split = make_split(dataset, config)
    labels, classes = dataset.labels, len(dataset.label_names)
    preprocessor = fit_preprocessing(dataset, split.train)
    x = preprocessor.transform(dataset.features)
    selection = train_model(
        x[split.train],
        labels[split.train],
        classes,
        config.model,
        config.train,
        x_valid=x[split.valid],
        y_valid=labels[split.valid],
        progress=progress,
    )
    temperature = fit_temperature(logits_of(selection.model, x[split.valid]), labels[split.valid])
    shipped, shipped_preprocessor = selection, preprocessor
    if config.refit:
        rows = np.sort(np.concatenate([split.train, split.valid]))
        shipped_preprocessor = fit_preprocessing(dataset, rows)
        x_refit = shipped_preprocessor.transform(dataset.features[rows])
        shipped = train_model(
            x_refit,
            labels[rows],
            classes,
            config.model,
            config.train,
            fixed_epochs=selection.member_epochs,
            progress=progress,
        )
    if len(split.test):
        evaluated, evaluated_pre, eval_rows, where = (
            shipped,
            shipped_preprocessor,
            split.test,
            "test",
        )
    else:
        evaluated, evaluated_pre, eval_rows, where = selection, preprocessor, split.valid, "valid"
    x_eval = evaluated_pre.transform(dataset.features[eval_rows])
    y_eval = labels[eval_rows]
    logits = logits_of(evaluated.model, x_eval)
    raw = torch.softmax(logits, dim=1).numpy()
    calibrated = torch.softmax(logits / temperature, dim=1).numpy()
    evaluation = classification_metrics(calibrated, y_eval, dataset.label_names)
    calibration = {
        "temperature": temperature,
        "ece_before": expected_calibration_error(raw, y_eval),
        "ece_after": expected_calibration_error(calibrated, y_eval),
    }

    def predict(rows: FloatArray) -> FloatArray:
        result: FloatArray = torch.softmax(
            logits_of(evaluated.model, rows) / temperature, 1
        ).numpy()
        return result

    importance = importance_of(
        predict, x_eval, y_eval, dataset.feature_names, config.importance_repeats, config.train.seed
    )
    protocol = split_protocol(dataset, split, config, selection, where)
    swap = (
        list_swap(dataset, split, config, selection, evaluation["accuracy"])
        if where == "valid"
        else {}
    )
    if swap:
        protocol += (
            " listswap_accuracy: a 2-fold list swap, the row-weighted mean of train->valid (the"
            " accuracy above) and valid->train (fit on valid for the same epochs, scored on"
            " train)."
        )
    device = str(resolve_device(config.train.device))
    report = {
        "name": config.name,
        "dataset": dataset.name,
        "labels": list(dataset.label_names),
        "split_protocol": protocol,
        "evaluated_on": f"{where} part, {len(set(dataset.groups[eval_rows].tolist()))} groups",
        "split_sizes": {
            "train": len(split.train),
            "valid": len(split.valid),
            "test": len(split.test),
            "outside": split.rows_outside,
        },
        "evaluation": evaluation,
        "evaluation_uncalibrated": classification_metrics(raw, y_eval, dataset.label_names),
        "calibration": calibration,
        "list_swap": swap,
        "feature_importance": importance,
        "history": [asdict(record) for record in selection.history],
        "best_epoch": selection.best_epoch,
        "member_epochs": list(selection.member_epochs),
        "epochs_run": selection.epochs_run,
        "data_report": dataset.report.to_dict(),
        "hyperparameters": config.hyperparameters(),
    }
    files = (*dataset.files, *split.sources)
    manifest = build_manifest(config, dataset, files, shipped, shipped_preprocessor, report)
    manifest["training"]["device"] = device
    directory = write_checkpoint(
        config.out, manifest, shipped.model.state_dict(), extra_files=build_files(report)
    )
    return RunOutcome(directory, manifest, report)


def list_swap(
    dataset: TabularDataset,
    split: Split,
    config: RunConfig,
    selection: TrainResult,
    forward_accuracy: float,
) -> dict[str, Any]:
    """A second estimate where no test part exists: the parts swap roles (fit on valid with the
    epochs the forward run chose, no early stopping, preprocessing refitted on valid; score on
    train). ``accuracy`` is the row-weighted mean of both directions, so every row is scored by
    a model that never saw its group. The reverse model trains on fewer rows than the forward
    one, so this is a pessimistic check of the valid figure, not a test figure."""
    preprocessor = fit_preprocessing(dataset, split.valid)
    reverse = train_model(
        preprocessor.transform(dataset.features[split.valid]),
        dataset.labels[split.valid],
        len(dataset.label_names),
        config.model,
        config.train,
        fixed_epochs=selection.member_epochs,
        progress=False,
    )
    logits = logits_of(reverse.model, preprocessor.transform(dataset.features[split.train]))
    backward = float((logits.argmax(dim=1).numpy() == dataset.labels[split.train]).mean())
    rows = (len(split.valid), len(split.train))
    return {
        "accuracy": (forward_accuracy * rows[0] + backward * rows[1]) / sum(rows),
        "train_to_valid_accuracy": forward_accuracy,
        "valid_to_train_accuracy": backward,
        "rows": {"train_to_valid": rows[0], "valid_to_train": rows[1]},
    }


def split_protocol(
    dataset: TabularDataset, split: Split, config: RunConfig, selection: TrainResult, where: str
) -> str:
    unit = "3-s segment rows grouped by track" if dataset.name == "gtzan3" else "rows"
    groups = "tracks" if dataset.name.startswith("gtzan") else "artists"

    def part(rows: IntArray) -> str:
        return f"{len(rows)} {unit} / {len(set(dataset.groups[rows].tolist()))} {groups}"

    members = config.model.members
    what = f"an ensemble of {members} MLPs" if members > 1 else "an MLP"
    stop_on = config.train.stop_on.replace("_", "-")
    text = (
        f"Split by {split.method} with no {groups[:-1]} on two sides: {what} trained on train "
        f"({part(split.train)}), early stopping on valid {stop_on} and temperature fitted on "
        f"valid ({part(split.valid)})"
    )
    if len(split.test):
        text += f", test ({part(split.test)}) touched only for the reported metrics"
    if split.rows_outside:
        text += f"; {split.rows_outside} rows on no list were not used"
    if config.refit:
        epochs = (
            f"each member's chosen epochs (median {selection.best_epoch})"
            if members > 1
            else f"the chosen {selection.best_epoch} epochs"
        )
        text += f"; shipped weights refit on train+valid for {epochs} with the valid temperature"
    if where == "test":
        text += "; metrics are the shipped model's on the held-out test part."
    else:
        text += (
            "; metrics are the train-only selection model's on valid (an estimate: valid also "
            "chose the epoch and temperature; no test rows exist here)."
        )
    return text


def build_manifest(
    config: RunConfig,
    dataset: TabularDataset,
    files: tuple[Path, ...],
    shipped: TrainResult,
    preprocessor: FeaturePreprocessor,
    report: dict[str, Any],
) -> dict[str, Any]:
    evaluation = report["evaluation"]
    headline = ("accuracy", "macro_f1", "top3_accuracy", "log_loss", "ece")
    metrics: dict[str, Any] = {"split_protocol": report["split_protocol"]}
    metrics.update({key: evaluation[key] for key in headline})
    if report["list_swap"]:
        metrics["listswap_accuracy"] = report["list_swap"]["accuracy"]
    metrics.update(
        evaluated_rows=evaluation["rows"],
        accuracy_uncalibrated=report["evaluation_uncalibrated"]["accuracy"],
        log_loss_uncalibrated=report["evaluation_uncalibrated"]["log_loss"],
    )
    return {
        "name": config.name,
        "kind": "features",
        "architecture": shipped.architecture,
        "labels": list(dataset.label_names),
        "preprocessing": preprocessor.to_dict(),
        "input_schema": {
            "features": list(preprocessor.feature_names),
            "imputable": sorted(preprocessor.imputable),
        },
        "calibration": report["calibration"],
        "metrics": metrics,
        "training": {
            "dataset": dataset.name,
            "data_files": [path.name for path in files],
            "data_fingerprint": fingerprint(files),
            "data_report": dataset.report.to_dict(),
            "code_version": code_version(),
            "hyperparameters": config.hyperparameters(),
            "seed": config.train.seed,
            "epochs_run": report["epochs_run"],
            "best_epoch": report["best_epoch"],
            "member_epochs": report["member_epochs"],
            "shipped_epochs": shipped.epochs_run,
            "split_sizes": report["split_sizes"],
        },
    }
