"""Builders of hand-written histories for checker tests."""

from __future__ import annotations

from typing import Any

from repro.harness.history import Event


def ev(t: float, kind: str, host: str = "", **fields: Any) -> Event:
    return Event(t=t, kind=kind, host=host, fields=fields)


def heartbeat(host: str, start: float, end: float, every: float = 0.25,
              down: tuple[float, float] | None = None, boot_id: str = "boot-a",
              reboot_at: float | None = None) -> list[Event]:
    """Probe samples of both legs from start to end; failed inside `down`; boot id
    changes at reboot_at."""
    out = []
    t = start
    while t <= end + 1e-9:
        ok = not (down and down[0] <= t < down[1])
        boot = boot_id if reboot_at is None or t < reboot_at else "boot-b"
        out.append(ev(round(t, 3), "probe", host, leg="tcp", tcp_ok=ok, ok=ok))
        out.append(ev(round(t + 0.01, 3), "probe", host, leg="ssh", ssh_ok=ok, ok=ok,
                      rtt_s=0.01 if ok else None, boot_id=boot if ok else None))
        t += every
    return out


def ssh_leg_down(events: list[Event], start: float, end: float) -> list[Event]:
    """The same history with the ssh leg of every probe in [start, end) failing while the TCP
    leg still answers: a host too busy to run an ssh command in time, not a dead one."""
    out = []
    for e in events:
        if e.kind == "probe" and e.get("leg") == "ssh" and start <= e.t < end:
            e = ev(e.t, e.kind, e.host, **(e.fields | {"ssh_ok": False, "ok": False,
                                                         "rtt_s": None, "boot_id": None}))
        out.append(e)
    return out


def fault_window(fault: str, host: str, start: float, stop: float | None = None,
                 shortfall: str = "", **measured: Any) -> list[Event]:
    """A fault's `fault.start` (with what it measured and its shortfall) and, when `stop` is
    given, its `fault.stop`: what `repro.harness.faults.base.injected` writes."""
    out = [ev(start, "fault.start", host, fault=fault, applied={}, measured=measured,
              shortfall=shortfall)]
    if stop is not None:
        out.append(ev(stop, "fault.stop", host, fault=fault))
    return out
