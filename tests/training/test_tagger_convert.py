"""The tagger's shipped tensors are exactly what converting the published wheel gives.

Reads the pinned ``musicnn`` 0.1.0 wheel (``make tagger-wheel`` fetches it; ``make test``
does so first) with our TensorBundle reader, converts, and compares with the ensemble's
``tagger`` member bit for bit; the reader is also held to the format's own checks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from modelcore.checkpoint import load_checkpoint, member_tensors, sha256_of
from modelcore.models.musicnn import Musicnn
from tests.conftest import REPOSITORY_ROOT
from training.tagger.convert import convert_musicnn
from training.tagger.tensorbundle import BundleError, read_checkpoint, read_index
from training.tagger.wheel import DEFAULT_WHEEL, WHEEL_SHA256, WheelError, read_tagger

ENSEMBLE = REPOSITORY_ROOT / "models" / "gtzan-cnn-lstm"


@pytest.fixture(scope="module")
def wheel() -> Path:
    if not DEFAULT_WHEEL.is_file():
        pytest.skip(f"musicnn wheel not found at {DEFAULT_WHEEL} (make tagger-wheel)")
    return DEFAULT_WHEEL


@pytest.fixture(scope="module")
def unpacked(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("musicnn")
    read_tagger(wheel, "MSD_musicnn", directory)
    return directory / "musicnn" / "MSD_musicnn"


def test_converting_the_wheel_gives_the_shipped_tensors(wheel: Path, tmp_path: Path) -> None:
    source = read_tagger(wheel, "MSD_musicnn", tmp_path)
    converted = convert_musicnn(source.variables)
    Musicnn().load_state_dict(converted, strict=True)
    latest = max(int(path.name) for path in ENSEMBLE.iterdir() if path.name.isdigit())
    checkpoint = load_checkpoint(ENSEMBLE / str(latest))
    member = checkpoint.manifest.members["tagger"]
    prefix = member["prefix"]
    shipped = member_tensors(checkpoint.state_dict, prefix)
    assert shipped.keys() == converted.keys()
    for key, tensor in converted.items():
        assert torch.equal(shipped[key], tensor), key
    # and the manifest names the very files the tensors came from
    assert member["provenance"] == source.provenance
    assert source.provenance["wheel_sha256"] == WHEEL_SHA256 == sha256_of(wheel)


def test_the_reader_keeps_only_what_the_checkpoint_holds(unpacked: Path) -> None:
    index = read_index(unpacked / ".index")
    assert index["conv2d/kernel"].shape == (7, 38, 1, 204)
    assert index["dense_1/kernel"].shape == (200, 50)
    variables = read_checkpoint(f"{unpacked}/")
    assert variables["batch_normalization_9/moving_variance"].shape == (1506,)
    assert (np.asarray(variables["batch_normalization_9/moving_variance"], dtype=float) > 0).all()


def test_a_damaged_checkpoint_is_refused_not_misread(unpacked: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(unpacked, broken)
    index = broken / ".index"
    data = bytearray(index.read_bytes())
    data[-1] ^= 0xFF  # the table's magic number
    index.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="magic"):
        read_checkpoint(f"{broken}/")
    shutil.copy(unpacked / ".index", index)
    data_file = broken / ".data-00000-of-00001"
    data_file.write_bytes(data_file.read_bytes()[:1000])
    with pytest.raises(BundleError, match="bytes recorded"):
        read_checkpoint(f"{broken}/")


def test_only_the_published_wheel_is_converted(tmp_path: Path) -> None:
    impostor = tmp_path / "musicnn-0.1.0-py3-none-any.whl"
    impostor.write_bytes(b"PK not the wheel")
    with pytest.raises(WheelError, match="not the published"):
        read_tagger(impostor, "MSD_musicnn", tmp_path)
    with pytest.raises(WheelError, match="make tagger-wheel"):
        read_tagger(tmp_path / "absent.whl", "MSD_musicnn", tmp_path)
