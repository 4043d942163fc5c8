"""PCM decoding and window cutting: chunk boundaries anywhere give the same samples and windows."""

from __future__ import annotations

import numpy as np
import pytest

from genre.v1 import genre_pb2
from server.errors import InvalidArgument
from server.streaming.pcm import PcmDecoder, WindowCutter


def split_anywhere(data: bytes, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(data)), size=len(data) // 7, replace=False))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@pytest.mark.parametrize("channels", [1, 2])
def test_s16_split_mid_sample_decodes_like_the_whole(channels: int) -> None:
    values = np.random.default_rng(1).integers(-32768, 32767, size=300 * channels, dtype="<i2")
    data = values.tobytes()
    whole = PcmDecoder(genre_pb2.PCM_S16LE, channels).decode(data)
    decoder = PcmDecoder(genre_pb2.PCM_S16LE, channels)
    pieces = np.concatenate([decoder.decode(part) for part in split_anywhere(data, 2)])
    np.testing.assert_array_equal(pieces, whole)
    assert decoder.pending_bytes == 0
    expected = values.astype(np.float32).reshape(-1, channels).mean(axis=1) / 32768.0
    np.testing.assert_allclose(whole, expected, rtol=1e-6)


def test_f32_rejects_non_finite_samples() -> None:
    decoder = PcmDecoder(genre_pb2.PCM_F32LE, 1)
    with pytest.raises(InvalidArgument, match=r"audio\.data"):
        decoder.decode(np.array([0.1, np.inf], dtype="<f4").tobytes())


def test_windows_are_the_same_however_the_samples_arrive() -> None:
    samples = np.arange(1000, dtype=np.float32)
    one = WindowCutter(window=100, hop=30, max_block=1000).push(samples)
    cutter = WindowCutter(window=100, hop=30, max_block=1000)
    many = [w for part in np.array_split(samples, 37) for w in cutter.push(part)]
    assert [w.start for w in one] == list(range(0, 901, 30))
    assert [w.start for w in many] == [w.start for w in one]
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a.samples, b.samples)
        np.testing.assert_array_equal(a.samples, samples[a.start : a.start + 100])
    assert cutter.remainder().start == 930
    np.testing.assert_array_equal(cutter.remainder().samples, samples[930:])


def test_the_buffer_stays_bounded() -> None:
    cutter = WindowCutter(window=100, hop=50, max_block=10)
    for _ in range(10_000):
        cutter.push(np.ones(10, dtype=np.float32))
    assert cutter.total == 100_000
    with pytest.raises(ValueError, match="block larger"):
        cutter.push(np.ones(10_000, dtype=np.float32))


def test_the_tail_window_is_flush_with_the_end() -> None:
    samples = np.arange(1000, dtype=np.float32)
    cutter = WindowCutter(window=300, hop=300, max_block=64)
    for part in np.array_split(samples, 40):
        cutter.push(part)
    assert cutter.windows_cut == 3  # 0, 300, 600; 900-999 is not covered
    tail = cutter.tail()
    assert tail is not None
    assert tail.start == 700
    np.testing.assert_array_equal(tail.samples, samples[700:])
    exact = WindowCutter(window=300, hop=300, max_block=1000)
    exact.push(samples[:900])
    assert exact.tail() is None  # nothing left uncovered
    assert WindowCutter(window=300, hop=300, max_block=1000).tail() is None


def test_a_long_stream_in_small_blocks_cuts_exact_windows_and_tail() -> None:
    """Small blocks against a wide window: the kept samples move to the buffer's front many
    times (compaction), and every window and the tail still hold exactly the stream's samples."""
    samples = np.arange(20_150, dtype=np.float32)
    cutter = WindowCutter(window=3000, hop=3000, max_block=100)
    windows = [
        w
        for start in range(0, samples.size, 100)
        for w in cutter.push(samples[start : start + 100])
    ]
    assert [w.start for w in windows] == list(range(0, 17_001, 3000))
    for window in windows:
        np.testing.assert_array_equal(window.samples, samples[window.start : window.start + 3000])
    tail = cutter.tail()
    assert tail is not None
    np.testing.assert_array_equal(tail.samples, samples[-3000:])
    np.testing.assert_array_equal(cutter.remainder().samples, samples[18_000:])
