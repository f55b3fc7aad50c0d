"""Alert watcher: what a monitoring server (Prometheus) says, polled from the runner.

Model: one thread asks Prometheus's HTTP API every `interval_s` (0.5 s) for
its alerting rules' state (`/api/v1/rules?type=alert`) and for a few instant
queries, and appends to the history:

  monitor  one per round: `ok` (the API answered), `last_eval` (history time of
           the rules' latest evaluation: a stalled evaluator shows as a stale
           one), and each query's value under its name (None: no series)
  alert    one per change of an alert instance (name + labels): `alert`,
           `state` (pending, firing, or inactive when it disappeared), `labels`,
           `active_since` (history time its expression first held)
  series   each query's value for the timeline (`panel`, `name`, `value`, `unit`)
  mark     each alert change for the timeline (`panel`, `name` "<alert> <state>", with
           the value of its `detail_label` label, e.g. "(rebooted)", when it has one)

Epoch times from Prometheus become history times through the history's wall
clock at its start (the runner's clock: Prometheus runs on the same machine).
Every request has a timeout, so a stalled Prometheus shows as rounds with
`ok` false, never as a hung observer.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field

from repro.harness.history import History
from repro.harness.services.prometheus import Prometheus


@dataclass(frozen=True)
class Query:
    """An instant query recorded every round (its first series' value), and how it is drawn."""

    name: str        # its field in `monitor` events
    expr: str
    panel: str = ""  # "" : recorded in `monitor` only, not drawn
    unit: str = ""
    title: str = ""  # its line's name in the panel ("": `name`)


@dataclass
class AlertWatcher:
    history: History
    prometheus: Prometheus
    host: str  # the host the alerts are about (the history's host field)
    queries: tuple[Query, ...] = ()
    interval_s: float = 0.5
    alert_panel: str = "alert"
    detail_label: str = "reason"  # an alert label whose value the timeline mark names too
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _states: dict[tuple[str, tuple[tuple[str, str], ...]], str] = field(
        default_factory=dict, init=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"alerts-{self.host}")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def __enter__(self) -> AlertWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        with contextlib.suppress(OSError):  # the observer must not starve behind the load
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
        while True:
            self.poll()
            if self._stop.wait(self.interval_s):
                break

    def _t(self, epoch: float | None) -> float | None:
        return None if epoch is None else round(epoch - self.history.wall_t0, 3)

    def poll(self) -> bool:
        """One round; False when Prometheus did not answer."""
        try:
            view = self.prometheus.rules()
            values = {q.name: self._value(q) for q in self.queries}
        except (OSError, ValueError, KeyError):
            self.history.append("monitor", self.host, ok=False)
            return False
        now = self.history.now()
        self.history.append("monitor", self.host, t=now, ok=True,
                            last_eval=self._t(view.last_evaluation), **values)
        for q in self.queries:
            if q.panel and values[q.name] is not None:
                self.history.append("series", self.host, t=now, panel=q.panel,
                                    name=q.title or q.name, value=values[q.name], unit=q.unit)
        seen = set()
        for a in view.alerts:
            key = (a.name, tuple(sorted(a.labels.items())))
            seen.add(key)
            if self._states.get(key) != a.state:
                self._record(now, key, a.state, self._t(a.active_at))
        for key in [k for k in self._states if k not in seen]:
            if self._states[key] != "inactive":
                self._record(now, key, "inactive", None)
        return True

    def _value(self, q: Query) -> float | None:
        result = self.prometheus.query(q.expr)
        return round(result[0][2], 3) if result else None

    def _record(self, t: float, key: tuple[str, tuple[tuple[str, str], ...]], state: str,
                active_since: float | None) -> None:
        self._states[key] = state
        name, labels = key
        self.history.append("alert", self.host, t=t, alert=name, state=state,
                            labels=dict(labels), active_since=active_since)
        detail = dict(labels).get(self.detail_label)
        self.history.append("mark", self.host, t=t, panel=self.alert_panel,
                            name=f"{name} {state}" + (f" ({detail})" if detail else ""))
