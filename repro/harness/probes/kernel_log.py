"""Kernel-log watcher: the serial console of a VM, read from outside the guest.

Model: QEMU writes the guest's serial console to a file from its first byte;
a thread on the runner tails that file (every `poll_s`, 50 ms) and matches
each complete line against PATTERNS. A match is a `kernel` event in the
history (fields: pattern, line, the kernel's own timestamp `kernel_t`), stamped
with the time the runner read it, so "seen at once" is measurable. The same
thread turns two more kinds of evidence into `host` events:

  - console lines: a `Linux version` banner after the first is a reboot
    (event=boot), the guest's `repro-guest: ready` line is event=guest_ready
    with the boot id;
  - what QEMU itself saw (QMP RESET / GUEST_PANICKED, the process exiting),
    for hosts that report it (`lifecycle()`).

`scan()` is the pure part (lines -> findings) and is what unit tests use.
Nothing here runs inside the guest: a panicked kernel still gets its last
words to the serial port, and the watcher reads them.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from repro.harness.history import History

# name -> pattern; the order is the order of precedence when one line matches several.
PATTERNS: dict[str, re.Pattern[str]] = {
    "panic": re.compile(r"Kernel panic - not syncing"),
    "oops": re.compile(r"\bOops\b|general protection fault|unable to handle (page fault|kernel)"),
    "bug": re.compile(r"\bBUG:|kernel BUG at"),
    "hung_task": re.compile(r"blocked for more than \d+ seconds"),
    "snapshot_invalidated": re.compile(r"snapshots?: Invalidating snapshot"),
    "ext4_error": re.compile(r"EXT4-fs error|EXT4-fs \([^)]*\): (Remounting filesystem read-only"
                             r"|I/O error|ext4_\w+:\d+: .*error)|Aborting journal on device"),
    "io_error": re.compile(r"I/O error"),
}
BOOT = re.compile(r"Linux version \S+")
READY = re.compile(r"repro-guest: ready host=(\S*) boot_id=(\S+)")
KERNEL_T = re.compile(r"^\[\s*(\d+\.\d+)\]")


@dataclass(frozen=True)
class Finding:
    kind: str  # "kernel" or "host"
    fields: dict[str, Any]


def scan(lines: Iterable[str], boots_seen: int = 0) -> tuple[list[Finding], int]:
    """Findings in console lines; `boots_seen` carries the banner count across calls."""
    found: list[Finding] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        m = KERNEL_T.match(line)
        kernel_t = float(m.group(1)) if m else None
        if BOOT.search(line):
            boots_seen += 1
            if boots_seen > 1:
                found.append(Finding("host", {"event": "boot", "boot": boots_seen, "line": line}))
            continue
        r = READY.search(line)
        if r:
            found.append(Finding("host", {"event": "guest_ready", "boot_id": r.group(2)}))
            continue
        for name, pattern in PATTERNS.items():
            if pattern.search(line):
                found.append(Finding("kernel", {"pattern": name, "line": line[:300],
                                                "kernel_t": kernel_t}))
                break
    return found, boots_seen


class ConsoleHost(Protocol):
    name: str

    def console(self) -> Path | None: ...


@dataclass
class KernelLogWatcher:
    history: History
    host: ConsoleHost
    poll_s: float = 0.05
    from_start: bool = False  # False: only what the console prints after start() (one boot seen)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _offset: int = field(default=0, init=False)
    _partial: bytes = field(default=b"", init=False)
    _boots: int = field(default=0, init=False)
    _life_seen: int = field(default=0, init=False)

    def start(self) -> None:
        path = self.host.console()
        if not self.from_start and path is not None and path.exists():
            self._offset = path.stat().st_size
            self._boots = 1
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"kernel-log-{self.host.name}")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        self.poll()  # the last words, if any arrived after the last round

    def __enter__(self) -> KernelLogWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll()

    def poll(self) -> list[Finding]:
        """Read what is new on the console (and in QEMU's life-cycle), record findings."""
        findings = self._read_console()
        for f in findings:
            self.history.append(f.kind, self.host.name, source="console", **f.fields)
        self._drain_lifecycle()
        return findings

    def _read_console(self) -> list[Finding]:
        path = self.host.console()
        if path is None:
            return []
        try:
            with path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        lines = [c.decode(errors="replace") for c in complete]
        findings, self._boots = scan(lines, self._boots)
        return findings

    def _drain_lifecycle(self) -> None:
        lifecycle = getattr(self.host, "lifecycle", None)
        if lifecycle is None:
            return
        events = lifecycle()
        for ev in events[self._life_seen:]:
            lag = max(0.0, time.monotonic() - ev.t_mono)
            self.history.append("host", self.host.name, t=self.history.now() - lag,
                                source="qemu", event=ev.event, detail=ev.detail)
        self._life_seen = len(events)
