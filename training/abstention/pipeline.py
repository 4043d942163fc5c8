"""``genre-train abstention``: a version of the audio ensemble that knows when not to answer.

The base version's genre model is kept bit for bit; the new version adds a music detector
fitted on train-list music and train-set non-music (``sounds.VOICES['train']``), and the default
``min_probability``, chosen on the valid list. Everything published is measured on the valid
list and the valid voices, which neither the detector nor its choices saw, except where a
figure says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from modelcore.abstention import Policy
from modelcore.checkpoint import load_checkpoint, read_manifest, split_members, write_checkpoint
from modelcore.manifest import Manifest
from modelcore.models.audio_ensemble import AudioEnsemble
from training.abstention.config import AbstentionRunConfig
from training.abstention.descriptors import EnsembleWindows, WindowTable
from training.abstention.detector import fit_detector, music_probabilities
from training.abstention.evaluation import choose_min_probability, judge, precision_curve, rates
from training.abstention.report import build_files
from training.abstention.sounds import Clip, non_music
from training.audio.data import load_audio_dataset
from training.fitting import resolve_device
from training.provenance import code_version
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


def out_of_sample_probabilities(
    config: AbstentionRunConfig,
    base: AudioEnsemble,
    temperature: float,
    train_music: WindowTable,
    train_labels: IntArray,
    valid_windows: list[FloatArray],
    valid_music: WindowTable,
    c: float,
) -> FloatArray:
    """Valid windows scored by members that never saw the valid list (the train-only CNN-LSTM
    and the head refitted on train windows), fused with the base version's weights, bias and
    temperature: what the shipped model would say of new music, as near as 160 tracks allow."""
    selection = load_checkpoint(config.cnn_lstm_selection)
    cnn = cnn_log_probabilities(selection, valid_windows)
    classes = len(base.class_bias)
    head = fit_head(train_music.descriptors[:, :TAGGER_WIDTH], train_labels, classes, c)
    tagger = head_log_probabilities(head, valid_music.descriptors[:, :TAGGER_WIDTH])
    weights = base.member_weights.numpy()
    fused = weights[0] * cnn + weights[1] * tagger + base.class_bias.numpy()
    logits = torch.from_numpy(fused.astype(np.float32)) / temperature
    result: FloatArray = torch.softmax(logits, dim=1).numpy()
    return result


def _clips_table(
    windows: EnsembleWindows, clips: list[Clip], hop: float, progress: bool, desc: str
) -> WindowTable:
    return windows.table([clip.samples for clip in clips], hop, progress, desc)


def run_abstention(config: AbstentionRunConfig, progress: bool = True) -> AbstentionOutcome:
    device = resolve_device(config.device)
    base_checkpoint = load_checkpoint(config.base)
    manifest = base_checkpoint.manifest
    windows = EnsembleWindows(base_checkpoint, device)
    labels = manifest.labels
    dataset = load_audio_dataset(config.data, windows.contract.sample_rate, labels, progress)
    lists = read_split_lists(config.splits_dir)
    if lists is None:
        raise ValueError(f"{config.splits_dir}: no train/valid split lists")
    split = split_by_lists(dataset.track_ids, lists)
    hop = windows.contract.default_hop_seconds
    tracks = {part: getattr(split, part).tolist() for part in ("train", "valid")}
    music_windows = {
        part: windows.cut(
            [dataset.waveforms[t] for t in chosen],
            config.train_hop_seconds if part == "train" else hop,
        )
        for part, chosen in tracks.items()
    }
    music = {
        part: windows.table_of(cut, progress, f"{part} music")
        for part, cut in music_windows.items()
    }
    clips = {
        part: list(
            non_music(
                part, config.clip_seconds, config.clips_per_voice, config.clips_per_kind,
                config.seed,
            )
        )
        for part in ("train", "valid")
    }  # fmt: skip
    other = {
        part: _clips_table(windows, clips[part], config.train_hop_seconds if part == "train"
                           else hop, progress, f"{part} non-music")
        for part in ("train", "valid")
    }  # fmt: skip

    # The detector learns from sound that is there: near-silence is the level check's job.
    audible = other["train"].levels >= config.silence_dbfs
    train_other = other["train"].take(audible)
    descriptors = np.concatenate([music["train"].descriptors, train_other.descriptors])
    is_music = np.r_[np.ones(len(music["train"].clip)), np.zeros(len(train_other.clip))]
    groups = np.r_[music["train"].clip, len(tracks["train"]) + train_other.clip]
    fitted = fit_detector(descriptors, is_music.astype(np.int64), groups.astype(np.int64))

    base_model = windows.model.cpu()
    valid_labels = dataset.labels[np.array(tracks["valid"])[music["valid"].clip]]
    train_labels = dataset.labels[np.array(tracks["train"])[music["train"].clip]]
    head_c = float(manifest.members.get("tagger_head", {}).get("c", 0.1))
    unseen = out_of_sample_probabilities(
        config, base_model, manifest.temperature, music["train"], train_labels,
        music_windows["valid"], music["valid"], head_c,
    )  # fmt: skip
    valid_music_probability = music_probabilities(fitted.detector, music["valid"].descriptors)
    base_policy = Policy(0.0, config.silence_dbfs, config.music_threshold)
    chosen, chosen_figures = choose_min_probability(
        unseen, valid_music_probability, music["valid"].levels, music["valid"].clip,
        base_policy, config.refusal_budget,
    )  # fmt: skip
    policy = Policy(chosen, config.silence_dbfs, config.music_threshold)

    figures = measure(
        policy, fitted.detector, music["valid"], unseen, valid_labels, other["valid"],
        clips["valid"], dataset.labels[np.array(tracks["valid"])],
    )  # fmt: skip
    figures["chosen"] = {"min_probability": chosen, **chosen_figures}
    figures["detector"] = {"c": fitted.c, "cv_log_loss": fitted.cv_log_loss}
    figures["precision_curve"] = precision_curve(unseen, valid_labels)
    figures["served_valid_music"] = rates(
        judge(
            music["valid"].probabilities, valid_music_probability, music["valid"].levels,
            music["valid"].clip, policy,
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


def measure(
    policy: Policy,
    detector: Any,
    valid_music: WindowTable,
    unseen: FloatArray,
    window_labels: IntArray,
    valid_other: WindowTable,
    valid_clips: list[Clip],
    track_labels: IntArray,
) -> dict[str, Any]:
    """Refusal of valid music and abstention on valid non-music, windows and tracks, under the
    policy, with the out-of-sample genre probabilities for music."""
    music = music_probabilities(detector, valid_music.descriptors)
    judged = judge(unseen, music, valid_music.levels, valid_music.clip, policy)
    answered = judged.tracks == 0
    correct = judged.track_top == track_labels
    other_music = music_probabilities(detector, valid_other.descriptors)
    other = judge(
        valid_other.probabilities, other_music, valid_other.levels, valid_other.clip, policy
    )
    kinds = np.array([clip.kind for clip in valid_clips])
    window_kinds = kinds[valid_other.clip]
    by_kind = {
        kind: {
            "clips": int((kinds == kind).sum()),
            "windows_abstained": rates(other.windows[window_kinds == kind])["refused"],
            "tracks_abstained": rates(other.tracks[kinds == kind])["refused"],
            "windows": rates(other.windows[window_kinds == kind]),
        }
        for kind in sorted(set(kinds.tolist()))
    }
    return {
        "music": {
            "tracks": len(judged.tracks),
            "windows": len(judged.windows),
            "window": rates(judged.windows),
            "track": rates(judged.tracks),
            "window_accuracy_all": float(np.mean(unseen.argmax(axis=1) == window_labels)),
            "track_accuracy_all": float(correct.mean()),
            "track_accuracy_answered": float(correct[answered].mean()) if answered.any() else 0,
        },
        "non_music": {
            "clips": len(valid_clips),
            "windows": len(other.windows),
            "window_abstained": rates(other.windows)["refused"],
            "track_abstained": rates(other.tracks)["refused"],
            "by_kind": by_kind,
        },
    }


def build_manifest(
    config: AbstentionRunConfig,
    base: Manifest,
    detector_inputs: int,
    policy: Policy,
    figures: dict[str, Any],
    c: float,
) -> Manifest:
    data = base.to_dict()
    architecture = dict(data["architecture"])
    architecture["params"] = {**architecture["params"], "music_detector_inputs": detector_inputs}
    members = {
        name: {key: value for key, value in member.items() if key != "weights"}
        for name, member in data["members"].items()
    }
    members["music_detector"] = {
        "role": "logistic regression on the tagger's 250 window features and the log-mel's "
        "per-band mean and spread (modelcore.models.audio_ensemble.detector_inputs); tensors in "
        "the main weights file (detector.*)",
        "c": c,
        "trained_on": "train-list music windows and made non-music of the train voices "
        "(training.abstention.sounds), near-silent clips left to the level check",
    }
    music, other = figures["music"], figures["non_music"]
    metrics = {
        **data["metrics"],
        "abstention_valid_music_windows_refused": music["window"]["refused"],
        "abstention_valid_music_tracks_refused": music["track"]["refused"],
        "abstention_valid_non_music_windows_abstained": other["window_abstained"],
        "abstention_valid_non_music_clips_abstained": other["track_abstained"],
        "abstention_valid_track_accuracy_answered": music["track_accuracy_answered"],
        "split_protocol": data["metrics"].get("split_protocol", "")
        + " Abstention: the detector fitted on train-list music and train-voice non-music; "
        "min_probability chosen, and every abstention_* figure measured, on the valid list's "
        "94 tracks (genre probabilities from members that never saw it) and on non-music of "
        "valid voices and seeds the detector never heard.",
    }
    calibration = {
        **data["calibration"],
        "abstention": {
            "min_probability": policy.min_probability,
            "music_threshold": policy.music_threshold,
            "chosen_for": f"at most {config.refusal_budget:.0%} of valid music windows and "
            "tracks refused for any reason (silence at the server's default "
            f"{config.silence_dbfs:g} dBFS, not music, uncertain)",
        },
    }
    training = {
        **data["training"],
        "abstention": {
            "base": str(config.base),
            "base_weights_sha256": base.weights_sha256,
            "selection_cnn_lstm": str(config.cnn_lstm_selection),
            "non_music_seed": config.seed,
            "code_version": code_version(),
            "command": "genre-train abstention --base "
            f"{config.base} --cnn-lstm-selection {config.cnn_lstm_selection}",
        },
    }
    data.update(
        architecture=architecture, members=members, metrics=metrics, calibration=calibration,
        training=training, version=0, created="",
    )  # fmt: skip
    data.pop("weights", None)
    return Manifest.from_dict(data)
