"""Loss and shaping with netem, between QEMU guests (Debian's cloud kernel has netem)."""

from __future__ import annotations

import re

import pytest

from repro.harness.faults.base import injected
from repro.harness.faults.loss import LossModel, PacketLoss
from repro.harness.faults.shaping import Shaping
from repro.harness.history import History
from repro.harness.hosts.base import Host
from repro.harness.run import Run

pytestmark = pytest.mark.qemu
HOSTS = ("qemu", ["a", "b"])  # provider, roles: see tests/conftest.py


def root_qdisc(h: Host) -> str:
    return h.run("tc qdisc show dev eth0 root", timeout=30).stdout


def test_netem_loss_independent_and_bursty(run: Run, hosts: dict[str, Host]) -> None:
    a, b = hosts["a"], hosts["b"]
    before = root_qdisc(a)
    for model in (LossModel(0.3), LossModel(0.3, burst=4)):
        fault = PacketLoss(run, [a, b], model)
        with injected(fault, History()) as applied:
            assert applied.effective, applied.shortfall
            assert all(d.endswith(": netem") for d in applied.params["directions"])
            qd = a.run("tc qdisc show dev eth0", timeout=30).stdout
            assert ("gemodel" in qd) == (not model.independent)
            assert not re.search(r"loss [\d.]+% [\d.]+%", qd)  # never a correlation argument
        assert root_qdisc(a) == before
        assert fault.final is not None and not fault.final.shortfalls()


def test_delay_and_jitter_show_in_round_trips(run: Run, hosts: dict[str, Host]) -> None:
    a, b = hosts["a"], hosts["b"]
    with injected(Shaping(run, [a, b], delay_ms=40), History()) as applied:
        assert applied.effective, applied.shortfall
        rtt = applied.measured["rtt"][0]["median_ms"]
        base = applied.measured["rtt_before"][0]["median_ms"]
        assert 72 <= rtt - base <= 88
    with injected(Shaping(run, [a, b], delay_ms=30, jitter_ms=10), History()) as applied:
        assert applied.effective, applied.shortfall
        assert applied.measured["rtt"][0]["stdev_ms"] >= 5
    assert "htb" not in root_qdisc(a)
