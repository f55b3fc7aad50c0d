"""The fault model (after Jepsen's nemesis).

A fault has `inject() -> Applied` (what it did, and what it measured of its
own effect) and `heal()` (idempotent: safe to call twice, or after a failed
inject). `injected(fault, history)` is the only way scenarios use a fault: it
records the fault window in the history (`fault.start` / `fault.stop`),
registers the fault in a process-wide registry so a SIGTERM/SIGINT handler
(installed by the plugin) can heal it, and heals in `finally`.

Whether a fault *took effect* is part of what it measures: `Applied.effective`
is False with a `shortfall` reason when it missed its target, and checkers turn
that into an inconclusive verdict.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from repro.history import History

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


@contextlib.contextmanager
def injected(fault: Fault, history: History) -> Iterator[Applied]:
    ACTIVE.add(fault)
    try:
        applied = fault.inject()
        history.append("fault.start", applied.target, t=applied.began_t, fault=fault.name,
                       params=applied.params, measured=applied.measured,
                       shortfall=applied.shortfall)
        yield applied
    finally:
        try:
            fault.heal()
        finally:
            ACTIVE.remove(fault)
            history.append("fault.stop", getattr(fault, "target_name", ""), fault=fault.name)
