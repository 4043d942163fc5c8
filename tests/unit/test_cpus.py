"""CPU counting for the worker and thread defaults: the pod's quota, not the node's cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ServerConfig
from server.pod.cpus import (
    MAX_DEFAULT_WORKERS,
    available_cpus,
    cgroup_cpu_limit,
    default_torch_threads,
    default_workers,
    gpu_present,
    inference_torch_threads,
)


def test_a_cgroup_v2_quota_is_read_as_cpus(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5


def test_no_cgroup_v2_quota_means_no_limit(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_a_cgroup_v1_quota_is_read_when_v2_is_absent(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path) == 2.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_nothing_readable_means_no_limit(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path) is None


def test_the_quota_caps_the_count_rounded_up(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU still gets one process
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert available_cpus(tmp_path) == min(2, available_cpus(tmp_path / "absent"))


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (2, 2), (8, 8), (64, MAX_DEFAULT_WORKERS)])
def test_one_worker_per_cpu_up_to_the_cap(cpus: int, workers: int) -> None:
    assert default_workers(cpus) == workers


@pytest.mark.parametrize(
    ("cpus", "workers", "threads"),
    [(2, 1, 1), (16, 1, 4), (1, 1, 1), (2, 2, 1), (16, 8, 1), (16, 2, 4), (16, 4, 3)],
)
def test_threads_are_each_workers_share_less_its_event_loop(
    cpus: int, workers: int, threads: int
) -> None:
    assert default_torch_threads(cpus, workers) == threads


def test_a_negative_worker_count_is_refused() -> None:
    with pytest.raises(ValueError, match="workers"):
        ServerConfig.from_sources([], {"GENRE_WORKERS": "-1"})


def fake_dev(tmp_path: Path, *names: str) -> Path:
    dev = tmp_path / "dev"
    dev.mkdir(parents=True)
    for name in names:
        (dev / name).touch()
    return dev


def test_a_gpu_is_seen_from_the_driver_files_without_torch(tmp_path: Path) -> None:
    with_gpu = fake_dev(tmp_path, "nvidiactl", "nvidia0")
    assert gpu_present({}, with_gpu)
    assert not gpu_present({"CUDA_VISIBLE_DEVICES": ""}, with_gpu)
    assert not gpu_present({"CUDA_VISIBLE_DEVICES": "-1"}, with_gpu)
    assert gpu_present({"CUDA_VISIBLE_DEVICES": "0"}, with_gpu)


def test_no_driver_files_means_no_gpu(tmp_path: Path) -> None:
    assert not gpu_present({}, fake_dev(tmp_path))
    assert not gpu_present({}, fake_dev(tmp_path / "x", "nvidiactl"))  # control, no device


@pytest.mark.parametrize(
    ("cpus", "workers", "threads"), [(2, 2, 1), (16, 8, 4), (8, 4, 4), (4, 1, 3)]
)
def test_the_inference_process_takes_the_cores_the_front_ends_leave(
    cpus: int, workers: int, threads: int
) -> None:
    assert inference_torch_threads(cpus, workers) == threads
