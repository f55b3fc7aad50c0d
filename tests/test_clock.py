"""The clock fault on a container (libfaketime) and on a QEMU guest (its kernel clock).

Docker: the clock jumps to a Saturday 23:55 and runs 120x; a process started through
`wrap` and every process it starts see one continuous clock (a child's `sleep 60`
takes half a real second and its second `date` reads 60 s later, not the start
again); a process not started through it sees real time. QEMU: a skew of one day
set on the guest's kernel clock is what every process reads; heal puts it back.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from repro.harness.errors import FaultError
from repro.harness.faults import clock as clock_module
from repro.harness.faults.base import injected
from repro.harness.faults.clock import Clock, Rate, Read
from repro.harness.history import History
from repro.harness.hosts import open_hosts
from repro.harness.hosts.base import Host
from repro.harness.run import Run

HOSTS = ("docker", ["clocked"])
SATURDAY = 1795910100.0  # 2026-11-28 23:55:00 UTC, a Saturday


@pytest.mark.docker
def test_faketime_clock_is_one_continuous_fast_clock(hosts: dict[str, Host]) -> None:
    host = hosts["clocked"]
    clock = Clock(host, start=SATURDAY, speed=120)
    with injected(clock, History(None)) as applied:
        assert applied.effective, applied.shortfall
        assert 80 <= applied.measured["rate"] <= 160
        t0 = time.monotonic()
        out = host.run(clock.wrap("sh -c 'date +%s; sleep 60; sh -c \"date +%s\"'"),
                       timeout=30).stdout.split()
        real = time.monotonic() - t0
        first, second = (int(x) for x in out)
        assert SATURDAY <= first < SATURDAY + 600
        assert 60 <= second - first <= 90, out   # the child continued its parent's clock
        assert real < 5
        assert abs(float(host.run("date +%s", timeout=10).stdout) - time.time()) < 5
    assert abs(clock.now() - time.time()) < 5  # healed: wrap is a no-op again


@pytest.mark.qemu
def test_kernel_clock_skew_on_a_guest(run: Run) -> None:
    with open_hosts("qemu", run, ["guest"]) as hs:
        guest = hs["guest"]
        with pytest.raises(FaultError, match="cannot run"):
            Clock(guest, speed=60).inject()
        clock = Clock(guest, skew_s=86400)
        with injected(clock, History(None)) as applied:
            assert applied.effective, applied.shortfall
            assert 86390 < float(guest.run("date +%s", timeout=10).stdout) - time.time() < 86410
        assert abs(float(guest.run("date +%s", timeout=10).stdout) - time.time()) < 5


def test_a_rate_is_judged_on_what_the_reads_allow_not_on_their_midpoints() -> None:
    # 120x for 0.9 s, read at the start of a 0.2 s round trip and at the end of another:
    # the midpoints say 154x (over the 25 % tolerance); the bounds (120-216x) cannot tell
    slow = Rate.between(Read(0.0, 0.0, 0.2), Read(0.7, 108.0, 0.9))
    assert round(slow.estimate) == 154 and slow.verdict(120) is None
    wide = Rate.between(Read(0.0, 0.0, 0.01), Read(5.0, 600.0, 5.2))   # the window widened
    assert wide.verdict(120) is True
    unfaked = Rate.between(Read(0.0, 0.0, 0.01), Read(0.5, 0.5, 0.52))  # real time: 1x
    assert unfaked.verdict(120) is False and not unfaked.near(120)


def test_the_window_widens_until_the_reads_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = iter([Read(0.0, 1000.0, 0.2), Read(0.7, 1108.0, 0.9), Read(3.0, 1360.0, 3.01)])
    clock = Clock(host=SimpleNamespace(name="h", vm=None), start=1000.0,  # type: ignore[arg-type]
                  speed=120)
    monkeypatch.setattr(clock, "_timed_read", lambda: next(reads))
    monkeypatch.setattr(clock_module.time, "sleep", lambda s: None)
    applied = clock._measure(1000.0)
    assert applied.effective, applied.shortfall
    assert applied.measured["window_s"] == 3.01 and 110 < applied.measured["rate"] < 130
