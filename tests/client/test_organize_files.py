"""What ``organize`` reads from audio files beyond their samples: rates over the contract's
(hi-res files, decimated), and titles from tags; against the fake classifier of
``test_organize_runs``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from client.organize.file_stream import stream_rate
from client.organize.library import read_report
from tests.client.test_organize_runs import RATE, FakeStreams, run


@pytest.mark.parametrize(("rate", "sent"), [(96000, 48000), (176400, 44100), (110250, 36750)])
def test_hi_res_files_are_decimated_into_the_contract_s_rates(
    tmp_path: Path, rate: int, sent: int
) -> None:
    assert stream_rate(rate) == (sent, rate // sent)
    library = tmp_path / "music"
    library.mkdir()
    frames = np.full((int(1.5 * rate) + 3, 2), 0.3, dtype=np.float32)  # not whole blocks
    soundfile.write(str(library / "hires.wav"), frames, rate, subtype="FLOAT")
    summary = run(FakeStreams(), library, tmp_path / "out")
    assert summary["tracks"] == {"metal": 1}  # the level survives the averaging
    (row,) = read_report(tmp_path / "out" / "report.csv")
    assert row.seconds == pytest.approx(1.5, abs=1 / sent)
    assert stream_rate(48000) == (48000, 1)
    assert stream_rate(8000) == (8000, 1)


def test_titles_come_from_tags(tmp_path: Path) -> None:
    library = tmp_path / "music"
    library.mkdir()
    with soundfile.SoundFile(
        str(library / "t.flac"), "w", RATE, 1, format="FLAC", subtype="PCM_16"
    ) as handle:
        handle.title = "Blue in Green"
        handle.artist = "Miles Davis"
        handle.write(np.full(RATE, 0.2, dtype=np.float32))
    run(FakeStreams(), library, tmp_path / "out")
    text = (tmp_path / "out" / "jazz.m3u8").read_text(encoding="utf-8")
    assert "#EXTINF:1,Miles Davis - Blue in Green\n../music/t.flac\n" in text
