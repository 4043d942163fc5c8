"""Inference threads in each overlay leave one requested core to the event loop.

Measured on 2 CPUs (``bench/results/torch_threads_h200.md``, 2 of an H200 machine's cores): a
second intra-op thread made 256-row calls no faster on the CPU and slower on the GPU, for more
CPU per call. The server's own default
(cores minus one) counts the node's cores, not the pod's request, so an overlay must set it."""

from __future__ import annotations

import math

import pytest

from server.config import ServerConfig
from tests.deploy.conftest import OVERLAYS, Manifest, config_map_data, server_container


def cores(quantity: str) -> float:
    """A Kubernetes CPU quantity (``2``, ``1500m``) in cores."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_inference_threads_leave_a_requested_core_to_the_event_loop(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    objects = rendered[overlay]
    config = ServerConfig.from_sources([], environ=config_map_data(objects))
    requested = cores(str(server_container(objects)["resources"]["requests"]["cpu"]))
    assert config.torch_threads >= 1, "set explicitly: 0 would count the node's cores"
    assert config.torch_threads <= max(1, math.floor(requested) - 1)


def test_cpu_quantities_are_read_in_cores() -> None:
    assert (cores("2"), cores("1500m"), cores("0.5")) == (2.0, 1.5, 0.5)
