"""The fault model (after Jepsen's nemesis).

A fault has `inject() -> Applied` (what it did, and what it measured of its
own effect) and `heal()` (idempotent: safe to call twice, or after a failed
inject). `injected(fault, history)` is the only way scenarios use a fault: it
records the fault window in the history (`fault.start` / `fault.stop`),
registers the fault in a process-wide registry so a SIGTERM/SIGINT handler
(installed by the plugin) can heal it, and heals in `finally`.

Whether a fault *took effect* is part of what it measures: `Applied.effective`
is False with a `shortfall` reason when it missed its target, and checkers turn
that into an inconclusive verdict. What a fault achieved over its whole window,
known only after it (loss counted, fill level reached, instances that ran), is
one `fault.measure` event written by `record_measure`. These three constructors
are the only writers of fault events.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from repro.harness.history import History

log = logging.getLogger(__name__)


@dataclass
class Applied:
    fault: str
    target: str
    params: dict[str, Any]
    measured: dict[str, Any] = field(default_factory=dict)
    shortfall: str = ""  # empty when the fault reached its target
    # history time the fault took effect, when the fault knows it better than "inject returned"
    began_t: float | None = None

    @property
    def effective(self) -> bool:
        return not self.shortfall


def machine_of(host: object) -> tuple[Any, int | None]:
    """What a whole host is on this machine: (its Docker container, None) or (None, its QEMU
    process id); (None, None) for a host the harness cannot stop as a whole (ssh, EC2)."""
    container = getattr(host, "container", None)
    if container is not None:
        return container, None
    proc = getattr(getattr(host, "vm", None), "proc", None)
    return None, proc.pid if proc is not None else None


class Fault(Protocol):
    name: str

    def inject(self) -> Applied: ...

    def heal(self) -> None: ...


class _Registry:
    """Faults currently injected in this process, healed on signals and at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._active.append(fault)

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._active:
                self._active.remove(fault)

    def heal_all(self) -> None:
        with self._lock:
            active, self._active = list(self._active), []
        for fault in reversed(active):
            try:
                fault.heal()
            except Exception as exc:  # healing the rest matters more than this error
                log.warning("healing %s failed: %s", fault.name, exc)


ACTIVE = _Registry()


def record_start(history: History, applied: Applied) -> None:
    history.append("fault.start", applied.target, t=applied.began_t, fault=applied.fault,
                   params=applied.params, measured=applied.measured,
                   shortfall=applied.shortfall)


def record_stop(history: History, fault: str, target: str) -> None:
    history.append("fault.stop", target, fault=fault)


def record_measure(history: History, fault: str, target: str, **measured: Any) -> None:
    history.append("fault.measure", target, fault=fault, **measured)


@contextlib.contextmanager
def injected(fault: Fault, history: History) -> Iterator[Applied]:
    ACTIVE.add(fault)
    try:
        applied = fault.inject()
        record_start(history, applied)
        yield applied
    finally:
        try:
            fault.heal()
        finally:
            ACTIVE.remove(fault)
            record_stop(history, fault.name, getattr(fault, "target_name", ""))
