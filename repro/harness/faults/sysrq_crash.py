"""sysrq_crash: crash the guest's kernel on purpose (`echo c > /proc/sysrq-trigger`).

Model: any incident can use a real kernel panic as its fault. `inject()` fires
the trigger from a detached shell on the guest (the SSH channel dies with the
kernel, so the command is not waited for) and then *measures* that it took
effect: the guest's console shows `sysrq: Trigger a crash` or a kernel panic,
or QEMU reports the guest panicked. A trigger with no such evidence within
`confirm_s` is a shortfall. Guests boot with `panic=1`, so the kernel reboots
itself a second later; `heal()` has nothing to undo (idempotent no-op) and
`wait_back()` waits until the guest is ready again on a new boot.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from repro.harness.faults.base import Applied
from repro.harness.hosts.base import Host

EVIDENCE = re.compile(r"sysrq: Trigger a crash|Kernel panic - not syncing")
READY = b"repro-guest: ready"
CONFIRM_POLL_S = 0.05


@dataclass
class SysrqCrash:
    host: Host
    confirm_s: float = 15.0
    name: str = "sysrq_crash"
    fired_at: float = field(default=0.0, init=False)  # time.monotonic() of the trigger
    _offset: int = field(default=0, init=False)

    @property
    def target_name(self) -> str:
        return self.host.name

    def _console_bytes(self) -> bytes:
        path = self.host.console()
        return path.read_bytes() if path is not None and path.exists() else b""

    def inject(self) -> Applied:
        self._offset = len(self._console_bytes())
        self.fired_at = time.monotonic()
        self.host.run("setsid nohup sh -c 'sleep 0.1; echo c > /proc/sysrq-trigger' "
                      ">/dev/null 2>&1 < /dev/null &", timeout=10, check=False)
        measured: dict[str, Any] = {}
        shortfall = f"no panic seen within {self.confirm_s:.0f} s of the trigger"
        deadline = self.fired_at + self.confirm_s
        while time.monotonic() < deadline:
            new = self._console_bytes()[self._offset:].decode(errors="replace")
            m = EVIDENCE.search(new)
            panicked = any(getattr(e, "event", "") == "panicked" and e.t_mono >= self.fired_at
                           for e in getattr(self.host, "lifecycle", list)())
            if m or panicked:
                measured = {"evidence": m.group(0) if m else "QEMU: guest panicked",
                            "seen_after_s": round(time.monotonic() - self.fired_at, 3)}
                shortfall = ""
                break
            time.sleep(CONFIRM_POLL_S)  # polling the console for the evidence
        return Applied(self.name, self.host.name, {"trigger": "c"}, measured, shortfall)

    def wait_back(self, timeout: float = 60.0) -> bool:
        """True once the guest printed its ready line again after the crash."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY in self._console_bytes()[self._offset:]:
                return True
            time.sleep(CONFIRM_POLL_S)
        return False

    def heal(self) -> None:
        """Nothing to undo: the guest reboots itself (panic=1)."""
