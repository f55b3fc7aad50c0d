"""Packet loss, partition and shaping between Docker hosts (nftables; this kernel has no netem)."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.harness.faults.base import injected
from repro.harness.faults.link import NetemUnavailable, Offloads
from repro.harness.faults.loss import LossModel, PacketLoss, measured_loss
from repro.harness.faults.partition import Partition, tcp_connects
from repro.harness.faults.shaping import Shaping
from repro.harness.history import History
from repro.harness.hosts.base import Host
from repro.harness.run import Run

pytestmark = pytest.mark.docker
HOSTS = ("docker", ["a", "b"])  # provider, roles: see tests/conftest.py


def tables(h: Host) -> str:
    return h.run("nft list tables", timeout=10).stdout


def transfer(src: Host, dst: Host, size: int = 2_000_000, port: int = 5301) -> None:
    dst.run(f"setsid nc -l -p {port} > /dev/null 2>&1 < /dev/null &", timeout=10)
    src.run(f"for i in $(seq 50); do nc -z {dst.address} {port} 2>/dev/null && break; "
            "sleep 0.1; done", timeout=15)  # wait until the listener answers
    dst.run(f"setsid nc -l -p {port} > /dev/null 2>&1 < /dev/null &", timeout=10)
    src.run(f"head -c {size} /dev/urandom | nc -N -w 60 {dst.address} {port}", timeout=300,
            check=False)  # under loss it may give up: the callers judge what was captured


def test_independent_loss_is_measured_within_two_points_and_healed(
        run: Run, hosts: dict[str, Host], tmp_path: Path) -> None:
    a, b = hosts["a"], hosts["b"]
    before = Offloads(a, "eth0").read()
    history = History(tmp_path / "h.jsonl")
    fault = PacketLoss(run, [a, b], LossModel(0.3))
    with measured_loss(fault, history) as applied:
        assert applied.effective, applied.shortfall
        assert applied.params["directions"] == [f"{a.name} -> {b.name}: nft",
                                                f"{b.name} -> {a.name}: nft"]
        cal = applied.measured["calibration"]["directions"]
        assert all(d["offered"] >= 5000 and abs(d["achieved"] - 0.3) <= 0.02 for d in cal)
        assert not any(any(Offloads(h, "eth0").read().values()) for h in (a, b))
        assert fault.table in tables(b)
        transfer(a, b)
    assert fault.table not in tables(a) + tables(b)
    assert Offloads(a, "eth0").read() == before
    fault.heal()  # idempotent
    final = [e for e in history.events() if e.kind == "fault.measure"][-1]
    assert final.get("shortfall") == ""
    assert all(d["oversize"] == 0 for d in final.get("directions"))


def test_bursty_loss_keeps_its_average(run: Run, hosts: dict[str, Host]) -> None:
    fault = PacketLoss(run, [hosts["a"], hosts["b"]], LossModel(0.2, burst=4))
    with injected(fault, History()) as applied:
        assert applied.effective, applied.shortfall
        assert applied.measured["calibration"]["required"] > 5000


def test_offloads_left_on_are_caught_by_the_oversize_counter(
        run: Run, hosts: dict[str, Host]) -> None:
    """DESIGN.md physics: drops on super-packets hide the loss; the fault must notice."""
    a, b = hosts["a"], hosts["b"]
    fault = PacketLoss(run, [a, b], LossModel(0.1), offloads_off=False)
    with injected(fault, History()):
        transfer(a, b)
    assert fault.final is not None
    assert any("segmentation offload" in s for s in fault.final.shortfalls())


def test_loss_far_from_target_is_a_shortfall(run: Run, hosts: dict[str, Host]) -> None:
    a, b = hosts["a"], hosts["b"]
    fault = PacketLoss(run, [a, b], LossModel(0.3))
    with injected(fault, History()):
        # a rule ahead of ours drops the calibration from a: too few packets reach the counters
        b.run("nft add table inet repro_t && nft 'add chain inet repro_t c { type filter hook "
              f"prerouting priority -400; }}' && nft add rule inet repro_t c ip saddr {a.address} "
              "udp dport 9 drop", timeout=10)
        try:
            again = fault._calibrate(5000)
        finally:
            b.run("nft delete table inet repro_t", timeout=10)
    assert any(f"{a.name} -> {b.name}" in s and "packets went through the fault" in s
               for s in again.shortfalls()), again.directions[0]


def test_partition_cuts_both_ways_and_heals(run: Run, hosts: dict[str, Host]) -> None:
    a, b = hosts["a"], hosts["b"]
    part = Partition(run, [a], [b])
    with injected(part, History()) as applied:
        assert applied.effective, applied.shortfall
        assert applied.measured["connects_through"] == []
        assert all(n > 0 for n in applied.measured["dropped"].values())
    assert part.restored is True
    assert tcp_connects(a, b.address) and tcp_connects(b, a.address)
    assert part.table not in tables(a) + tables(b)


def test_delay_needs_netem_and_says_precisely_why(run: Run, hosts: dict[str, Host]) -> None:
    shaping = Shaping(run, [hosts["a"], hosts["b"]], delay_ms=20)
    with pytest.raises(NetemUnavailable) as info, injected(shaping, History()):
        pass
    assert "CONFIG_NET_SCH_NETEM is not set" in str(info.value)
    assert "qemu" in info.value.fix
    assert hosts["a"].run("tc qdisc show dev eth0 root", timeout=10).stdout.startswith(
        "qdisc noqueue")


def test_rate_limit_is_measured_by_goodput(run: Run, hosts: dict[str, Host]) -> None:
    shaping = Shaping(run, [hosts["a"], hosts["b"]], rate_kbit=4000)
    with injected(shaping, History()) as applied:
        assert applied.effective, applied.shortfall
        for m in applied.measured["goodput_kbit"]:
            assert 2400 <= m["kbit"] <= 4200
    assert "htb" not in hosts["a"].run("tc qdisc show dev eth0", timeout=10).stdout
