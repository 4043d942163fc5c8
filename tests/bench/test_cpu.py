"""How a server's CPU splits over its serving processes, from two samples of /proc."""

from __future__ import annotations

import os

import pytest

from bench.cpu import ServerCpu, process_shares, server_cpu


def test_shares_are_the_cpu_each_process_spent_between_samples() -> None:
    before = ServerCpu(10.0, {1: 2.0, 2: 3.0, 3: 0.1})
    after = ServerCpu(16.0, {1: 5.0, 2: 4.0, 3: 0.1, 4: 0.0})

    assert process_shares(before, after, 2) == pytest.approx([0.75, 0.25])


def test_only_the_busiest_processes_count_and_idle_gives_none() -> None:
    before = ServerCpu(1.0, {1: 1.0, 2: 1.0, 3: 1.0})
    after = ServerCpu(3.0, {1: 2.0, 2: 2.0, 3: 1.01})

    assert process_shares(before, after, 2) == pytest.approx([0.5, 0.5])
    assert process_shares(before, before, 2) == []


def test_several_roots_are_each_a_serving_process() -> None:
    sample = server_cpu((os.getpid(), os.getppid()), workers=2)

    assert set(sample.processes) == {os.getpid(), os.getppid()}
    assert sample.total >= sample.processes[os.getpid()] > 0
