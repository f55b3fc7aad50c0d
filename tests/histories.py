"""Builders of hand-written histories for checker tests."""

from __future__ import annotations

from typing import Any

from repro.history import Event


def ev(t: float, kind: str, host: str = "", **fields: Any) -> Event:
    return Event(t=t, kind=kind, host=host, fields=fields)


def heartbeat(host: str, start: float, end: float, every: float = 0.25,
              down: tuple[float, float] | None = None, boot_id: str = "boot-a",
              reboot_at: float | None = None) -> list[Event]:
    """Probe samples from start to end; failed inside `down`; boot id changes at reboot_at."""
    out = []
    t = start
    while t <= end + 1e-9:
        ok = not (down and down[0] <= t < down[1])
        boot = boot_id if reboot_at is None or t < reboot_at else "boot-b"
        out.append(ev(round(t, 3), "probe", host, tcp_ok=ok, ssh_ok=ok, ok=ok,
                      boot_id=boot if ok else None))
        t += every
    return out
