"""A version appears whole or not at all, and version numbers only grow."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from modelcore import checkpoint
from modelcore.checkpoint import list_versions, load_checkpoint, write_checkpoint

MANIFEST = {
    "name": "tiny",
    "kind": "features",
    "architecture": {"type": "mlp"},
    "labels": ["a"],
    "preprocessing": {"feature_names": ["x"]},
    "input_schema": {"features": ["x"]},
}


def _state() -> dict[str, torch.Tensor]:
    return {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}


def test_versions_increase(tmp_path: Path) -> None:
    first = write_checkpoint(tmp_path, MANIFEST, _state())
    second = write_checkpoint(tmp_path, MANIFEST, _state(), extra_files={"report.md": b"hi"})
    assert (first.name, second.name) == ("1", "2")
    assert list_versions(tmp_path / "tiny") == [1, 2]
    assert load_checkpoint(second).manifest.version == 2
    assert (second / "report.md").read_bytes() == b"hi"


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, OSError])
def test_interrupted_write_leaves_no_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interruption: type[BaseException]
) -> None:
    write_checkpoint(tmp_path, MANIFEST, _state())

    def fail(path: Path) -> None:
        raise interruption("killed mid-write")

    monkeypatch.setattr(checkpoint, "_fsync_file", fail)
    with pytest.raises(interruption):
        write_checkpoint(tmp_path, MANIFEST, _state(), extra_files={"report.json": b"{}"})
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["1"]
    monkeypatch.undo()
    assert write_checkpoint(tmp_path, MANIFEST, _state()).name == "2"


def test_killed_process_leaves_no_visible_version(tmp_path: Path) -> None:
    """A writer SIGKILLed inside the write leaves at most a hidden staging directory."""
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        from pathlib import Path
        from modelcore import checkpoint

        def die(path):
            os.kill(os.getpid(), signal.SIGKILL)

        checkpoint._fsync_file = die
        checkpoint.write_checkpoint(Path({str(tmp_path)!r}), {MANIFEST!r}, {{"w": torch.ones(2)}})
        """
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", script], cwd=root, check=False)
    assert result.returncode != 0
    assert list_versions(tmp_path / "tiny") == []
    assert all(p.name.startswith(".staging-") for p in (tmp_path / "tiny").iterdir())
