"""[container_awareness]: the cpuset and the load sized from the runner (no hosts)."""

from __future__ import annotations

import dataclasses
import os

import pytest

from ..config import ContainerAwarenessConfig, cpuset_cpus


def test_cpuset_lists_the_cpus_it_names() -> None:
    assert cpuset_cpus("0") == [0]
    assert cpuset_cpus("0,2-3") == [0, 2, 3]
    for bad in ("", "a", "0,", "1-0", "0;1"):
        with pytest.raises(ValueError, match="cpuset"):
            cpuset_cpus(bad)


def test_a_cpuset_beyond_the_machine_is_refused() -> None:
    cfg = dataclasses.replace(ContainerAwarenessConfig(), cpuset=str(os.cpu_count() or 1))
    with pytest.raises(ValueError, match="cpuset names CPU"):
        cfg.validate()


def test_the_sized_load_is_bounded_like_a_fixed_rate() -> None:
    # 0.7 of the pools of 1 CPU at 1 ms a request: 2100 requests/s, more than one runner
    # drives; the reason names the sized load, not the rate nobody set
    cfg = dataclasses.replace(ContainerAwarenessConfig(), cpuset="0", downstream_ms=1.0)
    with pytest.raises(ValueError, match=r"the load sized from 1 CPUs \(2100/s\)"):
        cfg.validate()


def test_load_is_a_share() -> None:
    for load in (0.0, 1.5):
        with pytest.raises(ValueError, match="load is a share"):
            dataclasses.replace(ContainerAwarenessConfig(), load=load).validate()


def test_a_fixed_rate_still_validates_on_its_own() -> None:
    dataclasses.replace(ContainerAwarenessConfig(), rate=40.0).validate()
    with pytest.raises(ValueError, match="rate must be positive"):
        dataclasses.replace(ContainerAwarenessConfig(), rate=-1.0).validate()
