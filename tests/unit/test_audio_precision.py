"""Audio models in reduced precision only where their answers stay close to float32's.

On the CPU ``auto`` keeps float32 and no CUDA graphs. ``bfloat16`` asked for explicitly goes
through the same load-time check as on a GPU, so the check itself is tested here; the GPU's
own figures on real audio are in tests/integration/test_audio_precision.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modelcore.checkpoint import load_checkpoint
from server.compute.cuda_graphs import buckets
from server.runner import AudioRunner, made_music
from tests.support.checkpoints import TINY_FRONTEND, write_tiny_audio_model

CPU = torch.device("cpu")


@pytest.fixture
def version(tmp_path: Path) -> Path:
    return write_tiny_audio_model(tmp_path)


def test_auto_keeps_float32_and_no_graphs_on_the_cpu(version: Path) -> None:
    runner = AudioRunner(load_checkpoint(version), CPU)
    runner.warm_up(8)
    assert (runner.precision, runner.precision_error, runner.graphs) == ("float32", 0.0, "off")


def test_bfloat16_is_kept_when_it_stays_within_the_tolerance(version: Path) -> None:
    exact = AudioRunner(load_checkpoint(version), CPU, "float32")
    rough = AudioRunner(load_checkpoint(version), CPU, "bfloat16", tolerance=1.0)
    assert rough.precision == "bfloat16"
    probe = made_music(TINY_FRONTEND.sample_rate, TINY_FRONTEND.window_samples)
    difference = float(np.nanmax(np.abs(rough.run(probe) - exact.run(probe))))
    assert 0.0 < difference <= 1.0
    assert rough.precision_error == pytest.approx(difference)


def test_bfloat16_that_strays_past_the_tolerance_serves_in_float32(version: Path) -> None:
    exact = AudioRunner(load_checkpoint(version), CPU, "float32")
    refused = AudioRunner(load_checkpoint(version), CPU, "bfloat16", tolerance=1e-9)
    assert refused.precision == "float32"
    assert refused.precision_error > 1e-9  # the log line says by how much it strayed
    probe = made_music(TINY_FRONTEND.sample_rate, TINY_FRONTEND.window_samples)
    np.testing.assert_array_equal(refused.run(probe), exact.run(probe))


def test_the_probe_is_the_same_music_every_time() -> None:
    first = made_music(16000, 4000, windows=3)
    assert first.shape == (3, 4000)
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first, made_music(16000, 4000, windows=3))
    assert 0.05 < float(np.abs(first).mean()) < 0.5  # audible, not clipped


def test_graph_buckets_cover_every_batch_up_to_the_maximum() -> None:
    assert buckets(1) == [1]
    assert buckets(32) == [1, 2, 4, 8, 16, 32]
    assert buckets(48) == [1, 2, 4, 8, 16, 32, 64]
