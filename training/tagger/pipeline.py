"""``genre-train ensemble``: the CNN-LSTM and a head on the pretrained tagger, fused and shipped.

1. The tagger's weights come from the pinned musicnn wheel (``training.tagger.wheel``).
2. Every track's 3-s windows (hop from the CNN-LSTM's manifest) go through the tagger as the
   server runs it; the head is a logistic regression on those features.
3. Choices (the head's ``c``, the members' weights, the prior strength) and the temperature are
   made on the valid list with members that never saw it: the head fitted on the train list and
   the train-only CNN-LSTM. The headline figure comes from valid tracks that chose nothing: the
   valid list dealt into halves, each half scored with choices made on the other.
4. What ships: the train+valid CNN-LSTM, the head refitted on train+valid with the chosen ``c``,
   and the chosen weights, prior and temperature.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from modelcore.checkpoint import (
    Checkpoint,
    load_checkpoint,
    read_manifest,
    split_members,
    write_checkpoint,
)
from modelcore.frontend import (
    FrontEndConfig,
    LogMelFrontEnd,
    MusicnnFrontEnd,
    MusicnnFrontEndConfig,
)
from modelcore.manifest import Manifest
from modelcore.models import build_model
from modelcore.models.audio_ensemble import AudioEnsemble
from training.audio.data import AudioDataset, cut_windows, load_audio_dataset, split_tracks
from training.common import FloatArray, IntArray
from training.fitting import resolve_device
from training.provenance import code_version
from training.splits import deal_halves
from training.tagger.config import EnsembleRunConfig
from training.tagger.convert import convert_musicnn
from training.tagger.embeddings import embed_windows
from training.tagger.evaluation import EnsembleEvaluation, evaluate_choices
from training.tagger.fusion import Fusion, MemberWindows, log_prior_of
from training.tagger.head import C_GRID, fit_head, head_log_probabilities
from training.tagger.manifest import build_ensemble_manifest
from training.tagger.report import build_ensemble_files
from training.tagger.wheel import read_tagger


@dataclass(frozen=True)
class EnsembleOutcome:
    directory: Path
    manifest: Manifest
    evaluation: EnsembleEvaluation


def _cnn_lstm(path: Path) -> Checkpoint:
    checkpoint = load_checkpoint(path)
    if checkpoint.manifest.architecture.get("type") != "cnn_lstm":
        raise ValueError(f"{path}: not a CNN-LSTM version")
    return checkpoint


def _windows(
    dataset: AudioDataset, tracks: Sequence[int], contract: FrontEndConfig
) -> list[FloatArray]:
    hop = round(contract.default_hop_seconds * contract.sample_rate)
    return [cut_windows(dataset.waveforms[t], contract.window_samples, hop) for t in tracks]


def cnn_log_probabilities(checkpoint: Checkpoint, windows: list[FloatArray]) -> FloatArray:
    """The CNN-LSTM's window log-probabilities (temperature 1), through its own front-end."""
    model = build_model(checkpoint.manifest.architecture)
    model.load_state_dict(checkpoint.state_dict)
    model.eval()
    frontend = LogMelFrontEnd(FrontEndConfig.from_dict(checkpoint.manifest.frontend))
    with torch.inference_mode():
        parts = [torch.log_softmax(model(frontend(torch.from_numpy(w))), dim=1) for w in windows]
    result: FloatArray = torch.cat(parts).numpy()
    return result


def _halves(dataset: AudioDataset, valid: IntArray, seed: int) -> tuple[list[int], list[int]]:
    """Positions in ``valid`` of the two nested halves (``training.studies.nested``)."""
    entries = [f"{dataset.label_names[dataset.labels[t]]}/{dataset.track_ids[t]}" for t in valid]
    first, _ = deal_halves(entries, seed)
    chosen = set(first)
    a = [i for i, entry in enumerate(entries) if entry in chosen]
    b = [i for i, entry in enumerate(entries) if entry not in chosen]
    return a, b


def run_ensemble(config: EnsembleRunConfig, progress: bool = True) -> EnsembleOutcome:
    version = code_version()
    device = resolve_device(config.device)
    shipped_cnn, selection_cnn = _cnn_lstm(config.cnn_lstm), _cnn_lstm(config.cnn_lstm_selection)
    labels = shipped_cnn.manifest.labels
    if selection_cnn.manifest.labels != labels:
        raise ValueError("the two CNN-LSTM versions name different genres")
    contract = FrontEndConfig.from_dict(shipped_cnn.manifest.frontend)
    dataset = load_audio_dataset(config.data, contract.sample_rate, labels, progress=progress)
    split = split_tracks(dataset, config.splits_dir, 0.2, 0.2, config.seed)
    if len(split.test):
        raise ValueError("the ensemble is chosen on the valid list: give train and valid lists")

    num_classes = len(labels)
    ensemble = AudioEnsemble(num_classes, cnn_lstm=shipped_cnn.manifest.architecture["params"])
    with tempfile.TemporaryDirectory(prefix="musicnn-") as scratch:
        source = read_tagger(config.wheel, config.tagger_model, Path(scratch))
    ensemble.tagger.load_state_dict(convert_musicnn(source.variables))
    ensemble.cnn_lstm.load_state_dict(shipped_cnn.state_dict)
    ensemble.eval().to(device)
    tagger_frontend = MusicnnFrontEnd(MusicnnFrontEndConfig(), contract.sample_rate).to(device)

    every = np.concatenate([split.train, split.valid])
    per_track = _windows(dataset, every.tolist(), contract)
    features = np.concatenate(
        [
            embed_windows(ensemble, tagger_frontend, windows, device)
            for windows in tqdm(per_track, desc="tagger", disable=not progress)
        ]
    )
    owner = np.concatenate([np.full(len(w), t) for w, t in zip(per_track, every, strict=True)])
    in_train, in_valid = np.isin(owner, split.train), np.isin(owner, split.valid)

    # members that never saw the valid list, scored on its windows
    in_valid_list = set(split.valid.tolist())
    valid_windows = [w for w, t in zip(per_track, every, strict=True) if t in in_valid_list]
    valid_order = [t for t in every if t in in_valid_list]
    heads = {
        c: fit_head(features[in_train], dataset.labels[owner[in_train]], num_classes, c)
        for c in C_GRID
    }
    position = {track: i for i, track in enumerate(valid_order)}
    members = MemberWindows(
        cnn=cnn_log_probabilities(selection_cnn, valid_windows),
        head={c: head_log_probabilities(head, features[in_valid]) for c, head in heads.items()},
        window_track=np.array([position[t] for t in owner[in_valid]], dtype=np.int64),
        track_labels=dataset.labels[np.array(valid_order)],
    )
    train_classes = np.unique(dataset.labels[split.train])
    evaluation = evaluate_choices(
        members,
        log_prior_of(dataset.labels[split.train], num_classes),
        train_classes,
        _halves(dataset, np.array(valid_order), config.seed),
        labels,
    )

    # what ships: train+valid members with the valid list's choices
    choice: Fusion = evaluation.choice
    both = in_train | in_valid
    head = fit_head(features[both], dataset.labels[owner[both]], num_classes, choice.c)
    ensemble.head.load_state_dict(head.state_dict())
    prior = log_prior_of(dataset.labels[every], num_classes)
    with torch.no_grad():
        ensemble.member_weights.copy_(torch.tensor([choice.cnn_weight, 1 - choice.cnn_weight]))
        ensemble.class_bias.copy_(torch.from_numpy(-choice.prior_strength * prior))
    ensemble.cpu()
    own, member_files = split_members(
        ensemble.state_dict(), {member: f"{member}." for member in ("cnn_lstm", "tagger")}
    )
    manifest = build_ensemble_manifest(
        config, dataset, split, shipped_cnn, selection_cnn, source.provenance, evaluation,
        prior, version, device,
    )  # fmt: skip
    directory = write_checkpoint(
        config.out,
        manifest,
        own,
        extra_files=build_ensemble_files(manifest, evaluation),
        member_tensors=member_files,
    )
    return EnsembleOutcome(directory, read_manifest(directory), evaluation)
