"""Which pods get an inference process: asked for, refused, or chosen by the device."""

from __future__ import annotations

import pytest

from server.config import ServerConfig
from server.pod import supervisor


@pytest.mark.parametrize(
    ("mode", "device", "gpu", "expected"),
    [
        ("on", "cpu", False, True),
        ("off", "auto", True, False),
        ("auto", "auto", True, True),
        ("auto", "cuda", True, True),
        ("auto", "cpu", True, False),  # the device setting rules the GPU out
        ("auto", "auto", False, False),
    ],
)
def test_the_inference_process_mode(
    monkeypatch: pytest.MonkeyPatch, mode: str, device: str, gpu: bool, expected: bool
) -> None:
    monkeypatch.setattr(supervisor, "gpu_present", lambda: gpu)
    config = ServerConfig(inference_process=mode, device=device)
    assert supervisor.uses_inference_process(config) is expected


def test_an_unknown_mode_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="inference_process"):
        ServerConfig(inference_process="sometimes")
