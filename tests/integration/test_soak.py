"""The soak's short mode, as CI runs it: mixed load, no failed call, flat memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPOSITORY_ROOT
from tests.support.checkpoints import write_tiny_audio_model, write_tiny_model


def test_short_soak_passes(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_tiny_model(repository, "tiny-mlp")
    write_tiny_audio_model(repository, "tiny-audio")
    out = tmp_path / "results"
    command = [
        *(sys.executable, "-m", "bench.soak", "--seconds", "8"),
        *("--repository", str(repository), "--out", str(out)),
        *("--feature-callers", "4", "--streams", "2"),
    ]
    result = subprocess.run(
        command, cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    report = json.loads((out / "soak.json").read_text())
    assert report["passed"]
    assert report["errors"] == {}
    assert report["calls_ok"] > 100
    assert report["windows_ok"] > 10
    assert len(report["rss_mib"]) >= 6
    assert "| pass |" in (out / "soak.md").read_text()
