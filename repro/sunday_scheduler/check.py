"""The sunday_scheduler oracle: the dead man's switch, run over what each server's clock saw.

Input: the `op` events name "window" (one per server per window: the window, the
scheduler's fire log and the harness's ticks, both in the host clock's epoch
seconds) and the search's `op` name "minimal". It never reads the scheduler.

The switch: a server is registered when its window begins (its first tick) and
heartbeats with each fire; at any tick more than `ttl_s` after its last heartbeat it
is evicted, at last heartbeat + ttl. The ticks are the harness's own heartbeat on the
host, on the same clock: a tick after the eviction instant shows the server alive, so
the eviction is a misfire, a failure: "evicted srv-1 at Sun 00:02:30
America/Los_Angeles: no heartbeat since Sat 23:59:00".

Inconclusive, never green: an eviction whose silence holds a gap of ttl/2 or more in
the harness's ticks (the host itself stalled: its processes were not running, so the
missing fires prove nothing; a stall elsewhere in a window explains nothing), a clock
fault that did not land, or a week whose windows (read back from the hosts' ticks) did
not cover a midnight into each of the seven days.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from repro.harness.checks import Verdict
from repro.harness.history import Event
from repro.harness.rules import Findings, compose, fail, inconclusive

from .week import Window, local, local_day

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Params:
    period_s: float
    ttl_s: float
    tz: str


@dataclass(frozen=True)
class Observed:
    server: str
    phase: str          # "week" or "search"
    window: Window
    fires: list[float]
    ticks: list[float]
    real_start: float   # history time the host's clock was set ...
    clock_start: float  # ... to this (a little before the window's start)
    speed: float
    shortfall: str = ""

    def real(self, clock_t: float) -> float:
        """Where a host-clock instant falls on the run's clock."""
        return self.real_start + (clock_t - self.clock_start) / self.speed

    def as_fields(self) -> dict[str, Any]:
        return {"phase": self.phase, "window": self.window.as_fields(), "fires": self.fires,
                "ticks": self.ticks, "real_start": self.real_start,
                "clock_start": self.clock_start, "speed": self.speed,
                "shortfall": self.shortfall}

    @classmethod
    def from_event(cls, e: Event) -> Observed:
        w = e.get("window")
        return cls(e.host, str(e.get("phase")), Window(w["zone"], w["start"], w["midnight"],
                   w["end"]), list(e.get("fires") or []), list(e.get("ticks") or []),
                   float(e.get("real_start") or 0), float(e.get("clock_start") or w["start"]),
                   float(e.get("speed") or 1),
                   str(e.get("shortfall") or ""))


@dataclass(frozen=True)
class Eviction:
    server: str
    at: float          # host clock
    last: float        # the last heartbeat (or the registration)
    zone: str

    def describe(self) -> str:
        return (f"evicted {self.server} at {local(self.at, self.zone)}: no heartbeat since "
                f"{local(self.last, self.zone, with_zone=False)}")


def evictions(o: Observed, ttl_s: float) -> list[Eviction]:
    """The switch over one window: at most one eviction (an evicted server is out)."""
    if not o.ticks:
        return []
    last = o.ticks[0]
    fires = sorted(o.fires)
    for t in o.ticks:
        last = max([last, *(f for f in fires if f <= t)])
        if t - last > ttl_s:
            # seen at a tick of the harness's, on the host, after the instant: alive
            return [Eviction(o.server, last + ttl_s, last, o.window.zone)]
    return []


def misfires(o: Observed, ttl_s: float) -> list[Eviction]:
    """Evictions of a server the harness saw alive (its ticks went on), in a window whose
    clock landed, that no stall of the host explains."""
    if o.shortfall:
        return []
    return [e for e in evictions(o, ttl_s) if not stalled(o, ttl_s, e)]


def stalled(o: Observed, ttl_s: float, e: Eviction | None = None) -> float:
    """The longest gap between the harness's ticks, when it is ttl/2 or more (the host's
    processes did not run: fires it held back can add up to an eviction), else 0; with
    `e`, only a gap inside that eviction's silence counts (a stall elsewhere in the
    window explains nothing, and hides nothing: the switch reads the ticks after it)."""
    pairs = [(a, b) for a, b in pairwise(o.ticks)
             if e is None or (b > e.last and a < e.at)]
    gap = max((b - a for a, b in pairs), default=0.0)
    return gap if gap >= ttl_s / 2 else 0.0


def covered(o: Observed, p: Params) -> bool:
    """The ticks cross the window's midnight and reach a ttl and a period past it."""
    return bool(o.ticks) and o.ticks[0] <= o.window.midnight and \
        o.ticks[-1] >= o.window.midnight + p.ttl_s + p.period_s


def check(events: list[Event], p: Params) -> Verdict:
    seen = [Observed.from_event(e) for e in events
            if e.kind == "op" and e.get("name") == "window"]
    week = [o for o in seen if o.phase == "week"]
    search = [o for o in seen if o.phase == "search"]
    return compose(_figures(seen, events, p), _misfires(week, p), _search(search, events, p),
                   _unjudged(seen, p), _week_covered(week, p))


def _figures(seen: list[Observed], events: list[Event], p: Params) -> Findings:
    week = [o for o in seen if o.phase == "week"]
    span = [t for o in week for t in o.ticks]
    minimal = next((e for e in events if e.kind == "op" and e.get("name") == "minimal"), None)
    return Findings(figures={
        "misfires": sum(len(misfires(o, p.ttl_s)) for o in seen),
        "fires": sum(len(o.fires) for o in seen),
        "windows": len({(o.window.midnight, o.window.zone) for o in seen}),
        "week_clock_covered_h": round((max(span) - min(span)) / 3600, 1) if span else 0.0,
        "week_real_s": round(max(o.real(o.ticks[-1]) for o in week if o.ticks)
                             - min(o.real_start for o in week), 1) if span else 0.0,
        "clock_watched_h": round(sum(o.ticks[-1] - o.ticks[0] for o in seen if o.ticks)
                                 / 3600, 2),
        "instants_tried": len({(o.window.midnight, o.window.start) for o in seen
                               if o.phase == "search"}),
        "shrunk_instant": minimal.get("describe") if minimal else None})


def _misfires(week: list[Observed], p: Params) -> Findings:
    return fail(*(e.describe() for o in week for e in misfires(o, p.ttl_s)))


def _search(search: list[Observed], events: list[Event], p: Params) -> Findings:
    failing = [e for o in search for e in misfires(o, p.ttl_s)]
    if not failing:
        return Findings()
    minimal = next((e for e in events if e.kind == "op" and e.get("name") == "minimal"), None)
    shrunk = f"; shrunk to {minimal.get('describe')}" if minimal else ""
    return fail(f"Hypothesis found {len(failing)} failing instant(s), first: "
                f"{failing[0].describe()}"
                f"{shrunk}")


def _unjudged(seen: list[Observed], p: Params) -> Findings:
    out = Findings()
    for o in seen:
        where = f"{o.server}'s window over {local_day(o.window.midnight, o.window.zone)}"
        if o.shortfall:
            out.inconclusive.append(f"{where}: the clock did not land: {o.shortfall}")
            continue
        for e in evictions(o, p.ttl_s):
            if gap := stalled(o, p.ttl_s, e):
                out.inconclusive.append(
                    f"{where}: the host stalled ({gap:.0f} s of its clock without a tick of "
                    f"the harness's) before {e.describe()}: the stall explains it")
    return out


def _week_covered(week: list[Observed], p: Params) -> Findings:
    """A midnight into each of the seven days, crossed by a judged window of some server."""
    days = {DAYS[_weekday(o.window.midnight, o.window.zone)] for o in week
            if covered(o, p) and not o.shortfall
            and not any(stalled(o, p.ttl_s, e) for e in evictions(o, p.ttl_s))}
    missing = [d for d in DAYS if d not in days]
    if missing:
        return inconclusive(f"the hosts' clocks did not cover the midnight into "
                            f"{', '.join(missing)} (read back from the hosts)")
    return Findings()


def _weekday(t: float, zone: str) -> int:
    import zoneinfo
    from datetime import datetime
    return datetime.fromtimestamp(t + 1, zoneinfo.ZoneInfo(zone)).weekday()
