"""One features run end to end: load, split, fit preprocessing, train, calibrate, evaluate,
refit, and publish a version with its manifest and report.

Protocol, the same for every dataset: the selection model is fitted on ``train`` with early
stopping and temperature on ``valid``. With ``refit`` the shipped weights are trained again on
``train + valid`` (preprocessing refitted on those rows) for the chosen epoch count, keeping the
validation temperature. Headline metrics come from the shipped model on ``test`` when a test
part exists; otherwise (GTZAN, whose test list is held out elsewhere) from the selection model
on ``valid``, which is an estimate and is labelled as such in ``split_protocol``.

With ``cv_folds`` (Spotify only) the figures come instead from artist-grouped K-fold
cross-validation of that same procedure (``training.features.crossval``), and the shipped
weights are trained on every row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelcore.checkpoint import read_manifest, write_checkpoint
from modelcore.manifest import Manifest
from modelcore.preprocessing import FeaturePreprocessor, TextFeature
from training.evaluate import classification_metrics, expected_calibration_error
from training.evaluate import permutation_importance as importance_of
from training.features.all_rows import conflicting_rows
from training.features.boosting import BlendParts
from training.features.config import RunConfig
from training.features.crossval import cross_validate
from training.features.cv_figures import cv_figures
from training.features.datasets import fingerprint, load_dataset
from training.features.protocol import model_words, split_protocol, title_words, tree_words
from training.features.report import build_files
from training.features.selection import model_inputs, select_and_refit, title_source, train_fixed
from training.features.tabular import TabularDataset
from training.features.train import (
    FloatArray,
    TrainResult,
    logits_of,
)
from training.fitting import resolve_device
from training.provenance import code_version
from training.splits import Split, group_split, read_split_lists, split_by_lists


@dataclass(frozen=True)
class RunOutcome:
    directory: Path
    manifest: Manifest
    report: dict[str, Any]


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
    dataset = load_dataset(
        config.dataset, config.data, config.drop_bad_rows, config.genres, config.conflicts
    )
    if config.titles is not None and dataset.titles is None:
        raise ValueError(f"--titles: the {dataset.name} rows carry no track titles")
    if config.cv_folds:
        return run_cross_validated(dataset, config, progress)
    split = make_split(dataset, config)
    labels = dataset.labels
    fitted = select_and_refit(dataset, split, config, progress)
    selection, preprocessor, temperature = fitted.selection, fitted.preprocessor, fitted.temperature
    shipped, shipped_preprocessor = fitted.shipped, fitted.shipped_preprocessor
    if len(split.test):
        evaluated, evaluated_pre, eval_rows, where = (
            shipped,
            shipped_preprocessor,
            split.test,
            "test",
        )
    else:
        evaluated, evaluated_pre, eval_rows, where = selection, preprocessor, split.valid, "valid"
    x_eval = model_inputs(
        dataset, config, evaluated_pre.transform(dataset.features[eval_rows]), eval_rows
    )
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
        list_swap(dataset, split, config, selection, evaluation["accuracy"], fitted.blend)
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
    manifest = build_manifest(config, dataset, files, shipped, shipped_preprocessor, report, device)
    directory = write_checkpoint(
        config.out, manifest, shipped.model.state_dict(), extra_files=build_files(report)
    )
    return RunOutcome(directory, read_manifest(directory), report)


def run_cross_validated(
    dataset: TabularDataset, config: RunConfig, progress: bool = True
) -> RunOutcome:
    """Metrics from grouped K-fold cross-validation (``training.features.crossval``) over every row;
    shipped weights trained on every row for each member's median fold epoch, with the median
    fold temperature. Spotify only: GTZAN's groups are tracks, and folds of tracks would put
    one artist on both sides."""
    if dataset.name.startswith("gtzan"):
        raise ValueError("cross-validation needs artist groups; GTZAN's are tracks")
    held_out = conflicting_rows(config)
    validation = cross_validate(
        dataset, config, config.cv_folds, progress=progress, held_out=held_out
    )
    if config.cv_save is not None:
        validation.save(config.cv_save)
    epochs, temperature = validation.member_epochs(), validation.temperature()
    blend, title = validation.blend(), validation.title()
    every_row = np.arange(len(dataset.labels))
    shipped, preprocessor = train_fixed(dataset, every_row, config, epochs, blend, progress, title)
    labels = dataset.labels[validation.rows]
    figures = cv_figures(validation, dataset, held_out, temperature)
    summary = validation.summary()
    groups = len(set(dataset.groups.tolist()))
    what = model_words(config)
    protocol = (
        f"Artist-grouped {config.cv_folds}-fold cross-validation (seed {config.train.seed}) "
        f"over all {len(labels)} rows / {groups} artists, no artist in two folds: for each "
        f"fold, {what} trained on the other folds less {config.valid_fraction:.0%} of their "
        f"artists, which chose each member's epoch (early stopping on valid "
        f"{config.train.stop_on.replace('_', '-')}) and the temperature, refit on all the "
        f"other folds' rows for those epochs, and scored on the fold's unseen artists; metrics "
        f"pool the {config.cv_folds} folds' out-of-fold predictions (standard errors "
        f"clustered by artist). Shipped weights: trained on all {len(labels)} rows for each "
        f"member's median fold epoch (median {int(np.median(epochs))}) with the median fold "
        f"temperature{tree_words(blend)}{title_words(title)}; they were not scored on any "
        f"held-out row."
    ) + figures.protocol
    report = {
        "name": config.name,
        "dataset": dataset.name,
        "labels": list(dataset.label_names),
        "split_protocol": protocol,
        "evaluated_on": f"out-of-fold predictions, {groups} artists",
        "split_sizes": {"train": len(labels), "valid": 0, "test": 0, "outside": 0},
        "evaluation": figures.evaluation,
        "evaluation_uncalibrated": figures.evaluation_uncalibrated,
        "calibration": figures.calibration,
        "cross_validation": summary,
        "all_rows": figures.metrics,
        "list_swap": {},
        "feature_importance": validation.importance(),
        "history": [asdict(record) for record in validation.folds[0].history],
        "best_epoch": int(np.median(epochs)),
        "member_epochs": list(epochs),
        "epochs_run": max(epochs),
        "data_report": dataset.report.to_dict(),
        "hyperparameters": config.hyperparameters(),
    }
    manifest = build_manifest(
        config,
        dataset,
        dataset.files,
        shipped,
        preprocessor,
        report,
        str(resolve_device(config.train.device)),
        figures.metrics,
    )
    directory = write_checkpoint(
        config.out, manifest, shipped.model.state_dict(), extra_files=build_files(report)
    )
    return RunOutcome(directory, read_manifest(directory), report)


def list_swap(
    dataset: TabularDataset,
    split: Split,
    config: RunConfig,
    selection: TrainResult,
    forward_accuracy: float,
    blend: BlendParts | None = None,
) -> dict[str, Any]:
    """A second estimate where no test part exists: the parts swap roles (fit on valid with the
    epochs the forward run chose, no early stopping, preprocessing refitted on valid; score on
    train). ``accuracy`` is the row-weighted mean of both directions, so every row is scored by
    a model that never saw its group. The reverse model trains on fewer rows than the forward
    one, so this is a pessimistic check of the valid figure, not a test figure."""
    reverse, preprocessor = train_fixed(
        dataset, split.valid, config, selection.member_epochs, blend
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


def served_preprocessor(
    config: RunConfig, dataset: TabularDataset, preprocessor: FeaturePreprocessor
) -> FeaturePreprocessor:
    """The preprocessing the server applies: the fitted numeric one, plus the title's columns
    when the run has a title member (the model takes both in one matrix)."""
    source = title_source(dataset, config)
    if source is None:
        return preprocessor
    return replace(preprocessor, text_features=(TextFeature("title", source[0].max_length),))


def input_schema(
    config: RunConfig, dataset: TabularDataset, preprocessor: FeaturePreprocessor
) -> dict[str, Any]:
    """The manifest's ``input_schema``: the numeric features, those it imputes, and the text
    features (``text``: name and longest length) a title member takes."""
    schema: dict[str, Any] = {
        "features": list(preprocessor.feature_names),
        "imputable": sorted(preprocessor.imputable),
    }
    source = title_source(dataset, config)
    if source is not None:
        schema["text"] = [{"name": "title", "max_length": source[0].max_length}]
    return schema


def build_manifest(
    config: RunConfig,
    dataset: TabularDataset,
    files: tuple[Path, ...],
    shipped: TrainResult,
    preprocessor: FeaturePreprocessor,
    report: dict[str, Any],
    device: str,
    extra_metrics: Mapping[str, Any] | None = None,
) -> Manifest:
    """The draft manifest of a features run (``write_checkpoint`` adds version and weights)."""
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
        **(extra_metrics or {}),
    )
    return Manifest(
        name=config.name,
        kind="features",
        architecture=shipped.architecture,
        labels=tuple(dataset.label_names),
        preprocessing=served_preprocessor(config, dataset, preprocessor).to_dict(),
        input_schema=input_schema(config, dataset, preprocessor),
        calibration=report["calibration"],
        metrics=metrics,
        training={
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
            "device": device,
        },
    )
