"""The abstention study on small data: every set of clips measured uncoded and in each codec,
written as Markdown tables with a column per codec and a plot; v4's detector as the subject."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPOSITORY_ROOT
from training.abstention.codecs import Codec
from training.abstention.study import run
from training.abstention.study_report import markdown, study_png
from training.abstention.voices import VOICES, missing_synthesizers

VERSION = REPOSITORY_ROOT / "models" / "gtzan-cnn-lstm" / "4"


@pytest.mark.timeout(300)  # the ensemble over every clip twice, on one thread
def test_every_set_is_measured_in_every_codec(tiny_data: Path, tmp_path: Path) -> None:
    missing = missing_synthesizers(VOICES["test"])
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed; they read the test voices")
    codec = Codec("mp3", 64000)
    result = run(
        VERSION, tiny_data, seed=5, cache=tmp_path / "cache", codecs=(codec,), per_voice=1,
        seconds=4.0, noise_clips=2,
    )  # fmt: skip
    assert result["codecs"] == [codec.label]
    sets = result["sets"]
    assert "speech (test voices)" in sets
    for name, entry in sets.items():
        assert list(entry["codecs"]) == ["uncoded", codec.label], name
        assert entry["track"] == entry["codecs"]["uncoded"]["track"]  # v4's keys kept
    assert sets["speech (test voices)"]["clips"] == len(VOICES["test"])
    assert sets["music after 5 s of silence"]["codecs"][codec.label]["clips"] == 1  # every third
    for figures in sets["silence"]["codecs"].values():  # the level rule, whatever the codec
        assert figures["track"]["silence"] == 1.0

    text = markdown(result)
    assert f"| set | wanted | clips | uncoded | {codec.label} |" in text
    assert "## Windows abstained" in text
    assert text.count("| speech (test voices) |") == 2
    assert study_png(result).startswith(b"\x89PNG")
    cached = sorted((tmp_path / "cache" / "tables").glob("*.npz"))
    again = run(
        VERSION, tiny_data, seed=5, cache=tmp_path / "cache", codecs=(codec,), per_voice=1,
        seconds=4.0, noise_clips=2,
    )  # fmt: skip
    assert again == result  # from the cache: same tables, same figures
    assert sorted((tmp_path / "cache" / "tables").glob("*.npz")) == cached
