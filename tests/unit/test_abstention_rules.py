"""The abstention rules (``modelcore.abstention``): what a window, a track and a row say."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genre.v1 import genre_pb2
from modelcore.abstention import (
    ANSWERED,
    NOT_MUSIC,
    SILENCE,
    UNCERTAIN,
    Abstention,
    Policy,
    TrackTally,
    level_dbfs,
    row_abstentions,
    window_abstention,
)

POLICY = Policy(min_probability=0.4, silence_dbfs=-60.0, music_threshold=0.5)
SURE = np.array([0.9, 0.05, 0.05], dtype=np.float32)
UNSURE = np.array([0.35, 0.33, 0.32], dtype=np.float32)
OTHER = np.array([0.05, 0.9, 0.05], dtype=np.float32)


def test_the_enum_is_the_contracts() -> None:
    assert {member.name: int(member) for member in Abstention} == dict(genre_pb2.Abstention.items())
    assert NOT_MUSIC.reason == "not_music"


def test_levels_are_rms_dbfs() -> None:
    t = np.arange(22050) / 22050
    sine = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    assert level_dbfs(sine) == pytest.approx(-3.01, abs=0.01)
    assert level_dbfs(0.01 * sine) == pytest.approx(-43.01, abs=0.01)
    assert level_dbfs(np.zeros(100, dtype=np.float32)) == -200.0


@pytest.mark.parametrize(
    ("level", "music", "top", "expected"),
    [
        (-70.0, 0.99, 0.99, SILENCE),  # silence first: a silent window is not judged for music
        (-20.0, 0.1, 0.99, NOT_MUSIC),
        (-20.0, 0.9, 0.3, UNCERTAIN),
        (-20.0, 0.9, 0.9, ANSWERED),
        (-20.0, math.nan, 0.9, ANSWERED),  # no detector: never NOT_MUSIC
    ],
)
def test_a_window_is_judged_in_the_order_of_the_causes(
    level: float, music: float, top: float, expected: Abstention
) -> None:
    assert window_abstention(POLICY, level, music, top) == expected


def test_never_thresholds_turn_each_reason_off() -> None:
    never = Policy(min_probability=0.0, silence_dbfs=-math.inf)
    assert window_abstention(never, -200.0, 0.9, 0.01) == ANSWERED


def test_music_after_silence_is_answered_from_the_music_alone() -> None:
    tally = TrackTally(3, POLICY)
    for _ in range(3):
        tally.add(OTHER, SILENCE, 0.2)
    for _ in range(4):
        tally.add(SURE, ANSWERED, 0.95)
    answer = tally.answer()
    assert answer.abstention == ANSWERED
    np.testing.assert_allclose(answer.probabilities, SURE)  # the silent windows do not count
    assert answer.music_probability == pytest.approx(0.95)  # nor does their music probability


def test_a_track_abstains_when_most_of_it_did_by_the_commoner_reason() -> None:
    tally = TrackTally(3, POLICY)
    tally.add(SURE, ANSWERED, 0.9)
    tally.add(SURE, NOT_MUSIC, 0.1)
    tally.add(SURE, NOT_MUSIC, 0.2)
    assert tally.answer().abstention == NOT_MUSIC
    tally.add(SURE, SILENCE, 0.0)
    tally.add(SURE, SILENCE, 0.0)
    tally.add(SURE, SILENCE, 0.0)
    assert tally.answer().abstention == SILENCE
    assert tally.answer().music_probability == pytest.approx(0.4)  # the three heard windows


def test_half_music_is_answered_and_doubt_is_the_tracks_own() -> None:
    tally = TrackTally(3, POLICY)
    tally.add(SURE, NOT_MUSIC, 0.1)
    tally.add(UNSURE, UNCERTAIN, 0.9)  # uncertain windows are music
    assert tally.answer().abstention == UNCERTAIN  # the track's top is 0.35 < 0.4
    tally.add(SURE, ANSWERED, 0.9)
    tally.add(SURE, ANSWERED, 0.9)
    assert tally.answer().abstention == ANSWERED  # mean of the three music windows: 0.72


def test_rows_are_uncertain_under_the_threshold_only() -> None:
    rows = np.stack([SURE, UNSURE])
    assert row_abstentions(rows, 0.4) == [ANSWERED, UNCERTAIN]
    assert row_abstentions(rows, 0.0) == [ANSWERED, ANSWERED]
