"""Live progress: where the running reproduction is and what it sees, while it runs.

Model: every run envelope (repro.harness.envelope) is watched by one thread that reads
its history (the same events the checker will judge) and says, in one line: the
incident and direction, the time so far, the phase (the last `phase` event, or the
fault window open now, or the hosts' state), what the fault measured when it took
effect (and its shortfall), and live figures: heartbeat samples ok and failed with the
longest gap so far, operations done and failed, a disk fill's level, the
incident's own marks and series (decisions, fires, queue depth...). On a terminal the
line is rewritten in place every `TTY_EVERY_S`; in a log (not a TTY: CI) a plain line
is printed when the phase or the fault changes and at most every `LOG_EVERY_S`
otherwise. Off under `-q` and in xdist workers (their output is a pipe to the controller).

The terminal is the process's stderr as it was when this module was imported (the
plugin imports it before pytest captures output), written with os.write: a thread
may write while the test's own output is captured.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from repro.harness.checks import liveness_gaps
from repro.harness.history import Event, of_kind

if TYPE_CHECKING:
    from repro.harness.envelope import Envelope

TTY_EVERY_S = 1.0
LOG_EVERY_S = 15.0
try:
    _TERMINAL: int | None = os.dup(2)
except OSError:
    _TERMINAL = None


@dataclass
class Settings:
    enabled: bool = False
    tty: bool = False


SETTINGS = Settings()


def configure(enabled: bool) -> None:
    SETTINGS.enabled = enabled and _TERMINAL is not None
    SETTINGS.tty = bool(_TERMINAL is not None and os.isatty(_TERMINAL))


def _write(text: str) -> None:
    if _TERMINAL is not None:
        with contextlib.suppress(OSError):
            os.write(_TERMINAL, text.encode(errors="replace"))


def status(events: list[Event], started_s: float) -> tuple[str, str]:
    """(phase, figures) of a history so far."""
    phase = _phase(events)
    parts = []
    probes = of_kind(events, "probe")
    if probes:
        bad = sum(1 for e in probes if not e.get("ok"))
        end = events[-1].t if events else 0.0
        gap = max((g.length for g in liveness_gaps(probes, end=end)), default=0.0)
        parts.append(f"probes {len(probes) - bad} ok {bad} failed, longest gap {gap:.1f} s")
    ops = of_kind(events, "op")
    if ops:
        failed = sum(1 for e in ops if e.get("ok") is False)
        parts.append(f"ops {len(ops)}" + (f" ({failed} failed)" if failed else ""))
    fills = {e.host: e for e in of_kind(events, "fill")}  # a disk fill's polls, the last
    parts += [f"fill {host} {float(e.get('fraction') or 0):.0%} "
              f"({e.get('running')} writers)" for host, e in sorted(fills.items())]
    marks = Counter(str(e.get("name")) for e in of_kind(events, "mark"))
    parts += [f"{name} {n}" for name, n in sorted(marks.items())]
    last: dict[str, Event] = {}
    for e in of_kind(events, "series"):
        last[f"{e.get('name')} {e.host}".strip()] = e
    parts += [f"{k} {e.get('value')}{(e.get('unit') and ' ' + str(e.get('unit'))) or ''}"
              for k, e in sorted(last.items())][:4]
    return phase, " | ".join(parts)


def _phase(events: list[Event]) -> str:
    open_faults: dict[str, Event] = {}
    phase = "starting hosts"
    for e in events:
        if e.kind == "fault.start":
            open_faults[str(e.get("fault"))] = e
        elif e.kind == "fault.stop":
            open_faults.pop(str(e.get("fault")), None)
            phase = f"after fault {e.get('fault')}"  # not the set-up step from before it
        elif e.kind == "phase":
            phase = str(e.get("name"))
        elif e.kind == "host" and e.get("event") in ("ready", "init"):
            phase = f"host {e.get('event')}"
        elif e.kind in ("probe", "op", "mark") and phase == "starting hosts":
            phase = "observing"
    if open_faults:
        f = list(open_faults.values())[-1]
        measured = _measured(f.get("measured") or {})
        short = f" SHORTFALL: {f.get('shortfall')}" if f.get("shortfall") else ""
        return f"fault {f.get('fault')}" + (f" ({measured})" if measured else "") + short
    return phase


def _measured(measured: dict[str, object]) -> str:
    """What a fault measured when it took effect, in a few words: its scalar figures, and
    for a nested measurement that counted packets (a loss fault's calibration) the loss
    it achieved."""
    words = []
    for k, v in measured.items():
        if isinstance(v, dict):
            offered, dropped = v.get("offered"), v.get("dropped")
            if isinstance(offered, int) and isinstance(dropped, int) and offered:
                words.append(f"{k}: loss {dropped / offered:.1%} of {offered} packets")
        elif not isinstance(v, list):
            words.append(f"{k} {v}")
    return ", ".join(words)[:80]


@dataclass
class Watcher:
    env: Envelope
    _stop: threading.Event = field(default_factory=threading.Event)
    _said: str = ""
    _said_at: float = 0.0

    def line(self) -> tuple[str, str]:
        phase, figures = status(self.env.history.events(), self.env.started)
        head = f"[{self.env.incident} {self.env.label} {time.monotonic() - self.env.started:.0f} s]"
        return phase, " ".join(p for p in (head, phase, figures and f"| {figures}") if p)

    def loop(self) -> None:
        every = TTY_EVERY_S if SETTINGS.tty else 1.0
        while not self._stop.wait(every):
            self.tick()

    def tick(self, final: bool = False) -> None:
        phase, text = self.line()
        if SETTINGS.tty:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            fitted = text if len(text) <= width else text[:width - 1] + "…"
            _write("\r" + fitted.ljust(width) + ("\n" if final else ""))
            return
        now = time.monotonic()
        if final or phase != self._said or now - self._said_at >= LOG_EVERY_S:
            _write(text + "\n")
            self._said, self._said_at = phase, now


@contextlib.contextmanager
def watching(env: Envelope) -> Iterator[None]:
    if not SETTINGS.enabled:
        yield
        return
    w = Watcher(env)
    if not SETTINGS.tty:
        _write("\n")
    t = threading.Thread(target=w.loop, daemon=True, name="repro-progress")
    t.start()
    try:
        yield
    finally:
        w._stop.set()
        t.join(timeout=5)
        w.tick(final=True)
