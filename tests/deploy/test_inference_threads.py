"""Workers and inference threads in each overlay fit the pod's CPU request.

One serving process per requested CPU (``GENRE_WORKERS``), each with its share of the request
less one core for its event loop, at least one thread (``server.pod.cpus.default_torch_threads``).
Measured on 2 CPUs: a second intra-op thread made 256-row calls no faster on the CPU and slower on
the GPU, for more CPU per call (``bench/results/torch_threads_h200.md``); a second process gave
1.2-1.5x the calls/s of one (``bench/results/workers-probe``). The server's own defaults count the
cgroup quota, which is the pod's CPU *limit*, not its request, so an overlay sets both."""

from __future__ import annotations

import math

import pytest

from server.config import ServerConfig
from server.pod.cpus import default_torch_threads
from tests.deploy.conftest import OVERLAYS, Manifest, config_map_data, server_container


def cores(quantity: str) -> float:
    """A Kubernetes CPU quantity (``2``, ``1500m``) in cores."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_and_threads_fit_the_cpu_request(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    objects = rendered[overlay]
    config = ServerConfig.from_sources([], environ=config_map_data(objects))
    requested = math.floor(cores(str(server_container(objects)["resources"]["requests"]["cpu"])))
    assert config.workers >= 1, "set explicitly: 0 would count the CPU limit, not the request"
    assert config.torch_threads >= 1, "set explicitly: 0 would count the CPU limit"
    assert config.workers <= max(1, requested)
    assert config.torch_threads <= default_torch_threads(requested, config.workers)


def test_cpu_quantities_are_read_in_cores() -> None:
    assert (cores("2"), cores("1500m"), cores("0.5")) == (2.0, 1.5, 0.5)
