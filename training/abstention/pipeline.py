"""``genre-train abstention``: a version of the audio ensemble that knows when not to answer.

The base version's genre model is kept bit for bit; the new version's music detector is fitted
on train-list music and train-set non-music (``voices.VOICES['train']``), each clean and after
codec round trips, and the default ``min_probability`` is chosen on the valid list so that no
codec refuses more valid music than the budget. Everything published is measured on the valid
list and the valid voices, clean and in every codec of ``config.codecs``, which neither the
detector nor its choices saw, except where a figure says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from modelcore.abstention import Policy
from modelcore.checkpoint import (
    Checkpoint,
    load_checkpoint,
    read_manifest,
    split_members,
    write_checkpoint,
)
from modelcore.manifest import Manifest
from modelcore.models.audio_ensemble import AudioEnsemble, TaggerHead
from training.abstention.cache import Arrays
from training.abstention.config import AbstentionRunConfig
from training.abstention.descriptors import EnsembleWindows, WindowTable
from training.abstention.detector import fit_detector, music_probabilities
from training.abstention.evaluation import (
    Scored,
    choose_min_probability_across,
    judge,
    precision_curve,
    rates,
)
from training.abstention.manifest import build_manifest
from training.abstention.measure import music_figures, non_music_figures, worst_case
from training.abstention.report import build_files
from training.abstention.sounds import Clip, non_music
from training.abstention.variants import CLEAN, Extra, coded_table, training_table, variants
from training.audio.data import load_audio_dataset
from training.fitting import resolve_device
from training.splits import read_split_lists, split_by_lists
from training.tagger.head import fit_head, head_log_probabilities
from training.tagger.pipeline import cnn_log_probabilities

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
TAGGER_WIDTH = 250  # the first columns of the descriptors are the tagger's features


@dataclass(frozen=True)
class AbstentionOutcome:
    directory: Path
    manifest: Manifest
    figures: dict[str, Any]


@dataclass(frozen=True)
class ValidVariant:
    """The valid list's non-music as one codec left it, and its music (where measured in that
    codec) with genre probabilities from members that never saw the valid list."""

    other: WindowTable
    music: WindowTable | None = None
    unseen: FloatArray | None = None


class UnseenScorer:
    """Valid windows scored by members that never saw the valid list (the train-only CNN-LSTM
    and the head refitted on train windows), fused with the base version's weights, bias and
    temperature: what the shipped model would say of new music, as near as 160 tracks allow."""

    def __init__(
        self, selection: Checkpoint, base: AudioEnsemble, temperature: float, head: TaggerHead
    ) -> None:
        self.selection = selection
        self.weights = base.member_weights.detach().cpu().numpy()
        self.class_bias = base.class_bias.detach().cpu().numpy()
        self.temperature = temperature
        self.head = head

    @property
    def extra(self) -> tuple[str, Extra]:
        """The train-only CNN-LSTM's log-probabilities of each window, cached with its table."""
        name = f"cnn_lstm {self.selection.manifest.weights_sha256}"
        return name, lambda cut: {"cnn_log_p": cnn_log_probabilities(self.selection, cut)}

    def __call__(self, music: WindowTable, arrays: Arrays) -> FloatArray:
        cnn = arrays["cnn_log_p"].astype(np.float32)
        tagger = head_log_probabilities(self.head, music.descriptors[:, :TAGGER_WIDTH])
        fused = self.weights[0] * cnn + self.weights[1] * tagger + self.class_bias
        logits = torch.from_numpy(fused.astype(np.float32)) / self.temperature
        result: FloatArray = torch.softmax(logits, dim=1).numpy()
        return result


def run_abstention(config: AbstentionRunConfig, progress: bool = True) -> AbstentionOutcome:
    device = resolve_device(config.device)
    base_checkpoint = load_checkpoint(config.base)
    manifest = base_checkpoint.manifest
    windows = EnsembleWindows(base_checkpoint, device, config.cache)
    rate = windows.contract.sample_rate
    dataset = load_audio_dataset(config.data, rate, manifest.labels, progress)
    lists = read_split_lists(config.splits_dir)
    if lists is None:
        raise ValueError(f"{config.splits_dir}: no train/valid split lists")
    split = split_by_lists(dataset.track_ids, lists)
    tracks = {part: getattr(split, part).tolist() for part in ("train", "valid")}
    songs = {part: [dataset.waveforms[t] for t in chosen] for part, chosen in tracks.items()}
    clips = {
        part: list(
            non_music(
                part, config.clip_seconds, config.clips_per_voice, config.clips_per_kind,
                config.seed,
            )
        )
        for part in ("train", "valid")
    }  # fmt: skip
    rng = np.random.default_rng([config.seed, 26])  # the training copies' codecs
    hop = config.train_hop_seconds
    train_music = training_table(
        windows, songs["train"], hop, config.music_lossy_copies, rng, progress, "train music"
    )
    train_other = training_table(
        windows, [c.samples for c in clips["train"]], hop, config.lossy_copies, rng, progress,
        "train non-music",
    ).take_audible(config.silence_dbfs)  # fmt: skip

    # The detector learns from sound that is there: near-silence is the level check's job.
    descriptors = np.concatenate([train_music.table.descriptors, train_other.table.descriptors])
    is_music = np.r_[np.ones(len(train_music.group)), np.zeros(len(train_other.group))]
    groups = np.r_[train_music.group, len(tracks["train"]) + train_other.group]
    fitted = fit_detector(descriptors, is_music.astype(np.int64), groups.astype(np.int64))

    clean_train = train_music.take(train_music.copy == 0).table
    train_labels = dataset.labels[np.array(tracks["train"])[clean_train.clip]]
    head_c = float(manifest.members.get("tagger_head", {}).get("c", 0.1))
    classes = len(manifest.labels)
    head = fit_head(clean_train.descriptors[:, :TAGGER_WIDTH], train_labels, classes, head_c)
    scorer = UnseenScorer(
        load_checkpoint(config.cnn_lstm_selection), windows.model, manifest.temperature, head
    )
    valid = measure_variants(config, windows, songs["valid"], clips["valid"], scorer, progress)

    base_policy = Policy(0.0, config.silence_dbfs, config.music_threshold)
    scored = {
        label: Scored(
            variant.unseen,
            music_probabilities(fitted.detector, variant.music.descriptors),
            variant.music.levels,
            variant.music.clip,
        )
        for label, variant in valid.items()
        if variant.music is not None and variant.unseen is not None
    }
    chosen, chosen_figures = choose_min_probability_across(
        scored, base_policy, config.refusal_budget
    )
    policy = Policy(chosen, config.silence_dbfs, config.music_threshold)

    valid_labels = dataset.labels[np.array(tracks["valid"])]
    by_codec: dict[str, dict[str, Any]] = {}
    for label, variant in valid.items():
        by_codec[label] = {
            "non_music": non_music_figures(policy, fitted.detector, variant.other, clips["valid"])
        }
        if variant.music is not None and variant.unseen is not None:
            by_codec[label]["music"] = music_figures(
                policy, fitted.detector, variant.music, variant.unseen, valid_labels
            )
    figures: dict[str, Any] = dict(by_codec[CLEAN])
    figures["codecs"] = by_codec
    figures["worst_codec"] = worst_case(by_codec)
    figures["codec_settings"] = {
        "non_music": [codec.label for codec in config.codecs],
        "music": [codec.label for codec in config.music_codecs],
        "coded_hop_seconds": config.coded_hop_seconds,
    }
    figures["training_data"] = {
        "music_windows": len(train_music.group),
        "non_music_windows": len(train_other.group),
        "lossy_copies": config.lossy_copies,
        "music_lossy_copies": config.music_lossy_copies,
        "non_music_clips": len(clips["train"]),
    }
    figures["chosen"] = {"min_probability": chosen, **chosen_figures}
    figures["detector"] = {"c": fitted.c, "cv_log_loss": fitted.cv_log_loss}
    clean = valid[CLEAN]
    assert clean.music is not None  # uncoded music is measured in every run
    assert clean.unseen is not None
    figures["precision_curve"] = precision_curve(clean.unseen, valid_labels[clean.music.clip])
    figures["served_valid_music"] = rates(
        judge(
            clean.music.probabilities, scored[CLEAN].music, clean.music.levels, clean.music.clip,
            policy,
        ).windows
    )  # fmt: skip

    ensemble = AudioEnsemble(
        **{**manifest.architecture["params"], "music_detector_inputs": descriptors.shape[1]}
    )
    state = dict(base_checkpoint.state_dict)
    state.update({f"detector.{key}": value for key, value in fitted.detector.state_dict().items()})
    ensemble.load_state_dict(state, strict=True)
    own, member_files = split_members(
        ensemble.state_dict(), {member: f"{member}." for member in ("cnn_lstm", "tagger")}
    )
    draft = build_manifest(config, manifest, descriptors.shape[1], policy, figures, fitted.c)
    directory = write_checkpoint(
        config.out,
        draft,
        own,
        extra_files=build_files(config.base, draft, figures),
        member_tensors=member_files,
    )
    return AbstentionOutcome(directory, read_manifest(directory), figures)


def measure_variants(
    config: AbstentionRunConfig,
    windows: EnsembleWindows,
    songs: list[FloatArray],
    clips: list[Clip],
    scorer: UnseenScorer,
    progress: bool,
) -> dict[str, ValidVariant]:
    """The valid non-music clean at the served hop and through each of ``config.codecs`` at
    ``config.coded_hop_seconds``, and the valid music likewise in ``config.music_codecs``; one
    codec's audio in memory at a time."""
    hop = windows.contract.default_hop_seconds
    result = {}
    for label, codec in variants(config.codecs):
        at = hop if codec is None else config.coded_hop_seconds
        other, _ = coded_table(
            windows, [c.samples for c in clips], [codec] * len(clips), at, progress,
            f"valid non-music, {label}",
        )  # fmt: skip
        if codec is not None and codec not in config.music_codecs:
            result[label] = ValidVariant(other)
            continue
        music, arrays = coded_table(
            windows, songs, [codec] * len(songs), at, progress, f"valid music, {label}",
            scorer.extra,
        )  # fmt: skip
        result[label] = ValidVariant(other, music, scorer(music, arrays))
    return result
