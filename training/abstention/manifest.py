"""The manifest of a version that ``genre-train abstention`` publishes: the base's, with the
detector described, the abstention figures (clean and the worst codec's) among the metrics, and
the protocol that made them."""

from __future__ import annotations

from typing import Any

from modelcore.abstention import Policy
from modelcore.manifest import Manifest
from training.abstention.config import AbstentionRunConfig
from training.abstention.voices import VOICES
from training.provenance import code_version

PROTOCOL_MARK = " Abstention:"
"""Where a base version's own abstention protocol begins in its ``split_protocol``: a version
made from a version with a detector states its own instead."""


def protocol(config: AbstentionRunConfig, valid_tracks: int) -> str:
    codecs = ", ".join(codec.label for codec in config.codecs)
    music = ", ".join(codec.label for codec in config.music_codecs)
    return (
        f"{PROTOCOL_MARK} the detector fitted on train-list music and non-music made in the "
        f"{len(VOICES['train'])} train voices (espeak-ng and flite), each clip clean and as "
        f"{config.lossy_copies} copies (each track as {config.music_lossy_copies}) through a "
        "random codec (MP3, AAC, Opus or Vorbis at 24-160 kbit/s); min_probability chosen, "
        f"and every abstention_* figure measured, on the valid list's {valid_tracks} tracks "
        "(genre probabilities from members that never saw it) and on non-music of valid "
        "voices and seeds the detector never heard: uncoded at the served hop, and after "
        f"each of {codecs} (music: {music}) with windows {config.coded_hop_seconds:g} s "
        "apart; *_worst_codec is the worst of them."
    )


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
        "(training.abstention.sounds), each clean and after codec round trips "
        "(training.abstention.codecs), near-silent clips left to the level check",
    }
    music, other, worst = figures["music"], figures["non_music"], figures["worst_codec"]
    base_protocol = str(data["metrics"].get("split_protocol", "")).split(PROTOCOL_MARK)[0]
    metrics = {
        **data["metrics"],
        "abstention_valid_music_windows_refused": music["window"]["refused"],
        "abstention_valid_music_tracks_refused": music["track"]["refused"],
        "abstention_valid_non_music_windows_abstained": other["window_abstained"],
        "abstention_valid_non_music_clips_abstained": other["track_abstained"],
        "abstention_valid_track_accuracy_answered": music["track_accuracy_answered"],
        "abstention_valid_music_windows_refused_worst_codec": worst["music_windows_refused"][
            "value"
        ],
        "abstention_valid_music_tracks_refused_worst_codec": worst["music_tracks_refused"]["value"],
        "abstention_valid_non_music_windows_abstained_worst_codec": worst[
            "non_music_windows_abstained"
        ]["value"],
        "abstention_valid_non_music_clips_abstained_worst_codec": worst[
            "non_music_clips_abstained"
        ]["value"],
        "split_protocol": base_protocol + protocol(config, music["tracks"]),
    }
    calibration = {
        **data["calibration"],
        "abstention": {
            "min_probability": policy.min_probability,
            "music_threshold": policy.music_threshold,
            "chosen_for": f"at most {config.refusal_budget:.0%} of valid music windows and "
            "tracks refused for any reason (silence at the server's default "
            f"{config.silence_dbfs:g} dBFS, not music, uncertain), uncoded and in each of "
            + ", ".join(codec.label for codec in config.music_codecs),
        },
    }
    command = (
        f"genre-train abstention --data {config.data} --base {config.base} "
        f"--cnn-lstm-selection {config.cnn_lstm_selection}"
    )
    training = {
        **data["training"],
        "abstention": {
            "base": str(config.base),
            "base_weights_sha256": base.weights_sha256,
            "selection_cnn_lstm": str(config.cnn_lstm_selection),
            "non_music_seed": config.seed,
            "voices": {part: list(voices) for part, voices in VOICES.items()},
            "lossy_copies": config.lossy_copies,
            "codecs": [codec.label for codec in config.codecs],
            "refusal_budget": config.refusal_budget,
            "code_version": code_version(),
            "command": command,
        },
    }
    data.update(
        architecture=architecture, members=members, metrics=metrics, calibration=calibration,
        training=training, version=0, created="",
    )  # fmt: skip
    data.pop("weights", None)
    return Manifest.from_dict(data)
