"""The published abstention figures of one variant of the valid data (clean or one codec), and
the worst of them over every codec (music where it was measured in that codec)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from modelcore.abstention import Policy
from modelcore.models.audio_ensemble import MusicDetector
from training.abstention.descriptors import WindowTable
from training.abstention.detector import music_probabilities
from training.abstention.evaluation import judge, rates
from training.abstention.sounds import Clip

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def music_figures(
    policy: Policy,
    detector: MusicDetector,
    valid_music: WindowTable,
    unseen: FloatArray,
    track_labels: IntArray,
) -> dict[str, Any]:
    """Refusal of valid music, windows and tracks, under the policy, with the out-of-sample
    genre probabilities; ``track_labels`` (T,) is each track's genre."""
    music = music_probabilities(detector, valid_music.descriptors)
    judged = judge(unseen, music, valid_music.levels, valid_music.clip, policy)
    answered = judged.tracks == 0
    correct = judged.track_top == track_labels
    window_labels = track_labels[valid_music.clip]
    return {
        "tracks": len(judged.tracks),
        "windows": len(judged.windows),
        "window": rates(judged.windows),
        "track": rates(judged.tracks),
        "window_accuracy_all": float(np.mean(unseen.argmax(axis=1) == window_labels)),
        "track_accuracy_all": float(correct.mean()),
        "track_accuracy_answered": float(correct[answered].mean()) if answered.any() else 0,
    }


def non_music_figures(
    policy: Policy, detector: MusicDetector, valid_other: WindowTable, valid_clips: list[Clip]
) -> dict[str, Any]:
    """Abstention on valid non-music, windows and clips, in all and by kind of sound, with the
    names of any clip answered (so a failure says which voice or noise it was)."""
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
    answered = [clip.name for clip, verdict in zip(valid_clips, other.tracks, strict=True)
                if verdict == 0]  # fmt: skip
    return {
        "clips": len(valid_clips),
        "windows": len(other.windows),
        "window_abstained": rates(other.windows)["refused"],
        "track_abstained": rates(other.tracks)["refused"],
        "by_kind": by_kind,
        "answered_clips": answered,
    }


def worst_case(by_codec: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The worst figure over every variant, and which variant it came from."""

    def worst(section: str, path: tuple[str, ...], highest: bool) -> dict[str, Any]:
        values = {}
        for label, figures in by_codec.items():
            if section not in figures:
                continue
            value: Any = figures[section]
            for key in path:
                value = value[key]
            values[label] = float(value)
        label = (max if highest else min)(values, key=lambda name: values[name])
        return {"value": values[label], "codec": label}

    return {
        "music_windows_refused": worst("music", ("window", "refused"), True),
        "music_tracks_refused": worst("music", ("track", "refused"), True),
        "non_music_windows_abstained": worst("non_music", ("window_abstained",), False),
        "non_music_clips_abstained": worst("non_music", ("track_abstained",), False),
    }
