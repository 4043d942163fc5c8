"""A peer that cannot be set up or started becomes a skipped comparison that says why."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.peers import triton
from bench.peers.base import Peer, PeerSettings
from bench.peers.process import PeerProcess, PeerUnavailable, free_ports, launch
from bench.run import main
from tests.support.checkpoints import write_tiny_model


def settings(tmp_path: Path) -> PeerSettings:
    probe = tmp_path / "v2-1.bin"
    probe.write_bytes(b"")
    return PeerSettings(
        tmp_path, tmp_path / "models" / "tiny-mlp" / "1", "tiny-mlp", {"features-1": probe},
        max_batch_size=256, max_queue_delay_ms=5.0, start_s=20.0,
    )  # fmt: skip


class ExitingPeer(Peer):
    """Sets up (or fails to, once told) and starts a process that exits before it serves."""

    name = "exiting"

    def __init__(self, settings: PeerSettings, setup_error: Exception | None = None) -> None:
        super().__init__(settings)
        self.setup_error, self.setups = setup_error, 0

    def prepare(self) -> None:
        self.setups += 1
        if self.setup_error is not None:
            raise self.setup_error

    def start(self, workers: int) -> PeerProcess:
        (port,) = free_ports(1)
        command = [sys.executable, "-c", f"print('cannot load {workers} instances'); exit(3)"]
        return launch(command, port, self.workdir / "peer.log", self.workdir, {})


def test_a_peer_that_exits_before_serving_is_unavailable_with_its_last_words(
    tmp_path: Path,
) -> None:
    peer = ExitingPeer(settings(tmp_path))

    with (
        pytest.raises(PeerUnavailable, match=r"exited 3: cannot load 2 instances"),
        peer.serving(2),
    ):
        pass


def test_a_failed_setup_is_remembered_not_tried_again(tmp_path: Path) -> None:
    peer = ExitingPeer(settings(tmp_path), PeerUnavailable("pip install failed: no network"))

    for _ in range(2):
        with pytest.raises(PeerUnavailable, match="no network"), peer.serving(1):
            pass

    assert peer.setups == 1


def test_a_run_records_a_peer_it_cannot_set_up_as_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tiny_model(tmp_path / "models", name="tiny-mlp")
    absent = tmp_path / "no-python3.11"
    monkeypatch.setattr(triton, "PYTHON", str(absent))  # the venv is neither built nor touched

    assert main(["--quick", "--servers", "triton", "--repository", str(tmp_path / "models"),
                 "--model", "tiny-mlp", "--out", str(tmp_path / "out")]) == 0  # fmt: skip

    results = json.loads((tmp_path / "out" / "benchmarks.json").read_text())
    assert results["cells"] == []
    assert results["skipped"] == {
        "triton": f"PeerUnavailable: {absent} not found (the triton venv must be made from it)"
    }
    assert "Skipped triton: PeerUnavailable" in (tmp_path / "out" / "benchmarks.md").read_text()
