"""The sunday_scheduler oracle: the dead man's switch, run over what each server's clock saw.

Input: the `op` events name "window" (one per server per window: the window, the
scheduler's fire log and the harness's ticks, both in the host clock's epoch
seconds) and the search's `op` name "minimal". It never reads the scheduler.

The switch: a server is registered when its window begins (its first tick) and
heartbeats with each fire; at any tick more than `ttl_s` after its last heartbeat it
is evicted, at last heartbeat + ttl. The ticks are the harness's own heartbeat on the
host, on the same clock: a tick after the eviction instant shows the server alive, so
the eviction is a misfire, a failure. The failure is the evidence, whatever the day:
*a live server evicted* (rule `_live_server_evicted`, the week's windows; rule
`_search_evicted_live`, the instants Hypothesis tried), each a `Misfire` saying the
server, the eviction instant, its last heartbeat and how many fires it had sent in the
window, and the harness's ticks on it after the eviction: "a live server evicted: srv-1
at Sun 00:02:30 America/Los_Angeles, no heartbeat since Sat 23:59:00 (its last of 5 in
its window over Sun 2026-11-29); the harness's ticks on it went on to Sun 00:04:30 (10
after the eviction)". The same evidence is the figure `evicted_live` (one entry per
misfire, with its phase). Where Hypothesis shrank a failing instant to is a figure
(`shrunk_instant`) beside that evidence, never a condition of the verdict: a shrink
can end in any local minimum (a Sunday's midnight, or a Monday's window started three
minutes early, whose server is evicted on Sunday night before any fire).

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


@dataclass(frozen=True)
class Misfire:
    """A live server evicted: the switch's eviction, and what shows the server was fine
    (the harness's ticks on the host went on after it)."""

    eviction: Eviction
    phase: str
    window_day: str      # the day whose midnight the window crosses: "Sun 2026-11-29"
    fires_before: int    # the scheduler's heartbeats in the window up to the eviction
    ticks_after: int     # the harness's ticks on the host after the eviction instant
    alive_until: float   # the last of those ticks (host clock)

    def describe(self) -> str:
        e = self.eviction
        since = (f"no heartbeat since {local(e.last, e.zone, with_zone=False)} (its last of "
                 f"{self.fires_before} in its window over {self.window_day})"
                 if self.fires_before else
                 f"no heartbeat since it registered at {local(e.last, e.zone, with_zone=False)}"
                 f" (none in its window over {self.window_day})")
        return (f"a live server evicted: {e.server} at {local(e.at, e.zone)}, {since}; the "
                f"harness's ticks on it went on to "
                f"{local(self.alive_until, e.zone, with_zone=False)} ({self.ticks_after} after "
                f"the eviction)")

    def as_fields(self) -> dict[str, Any]:
        e = self.eviction
        return {"server": e.server, "phase": self.phase, "window_day": self.window_day,
                "evicted_at": e.at, "evicted_local": local(e.at, e.zone),
                "last_heartbeat_local": local(e.last, e.zone),
                "fires_before": self.fires_before, "ticks_after": self.ticks_after,
                "alive_until_local": local(self.alive_until, e.zone)}


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


def misfires(o: Observed, ttl_s: float) -> list[Misfire]:
    """Evictions of a server the harness saw alive (its ticks went on), in a window whose
    clock landed, that no stall of the host explains; each with its evidence."""
    if o.shortfall:
        return []
    return [_misfire(o, e) for e in evictions(o, ttl_s) if not stalled(o, ttl_s, e)]


def _misfire(o: Observed, e: Eviction) -> Misfire:
    after = [t for t in o.ticks if t > e.at]
    return Misfire(e, o.phase, local_day(o.window.midnight, o.window.zone),
                   sum(1 for f in o.fires if f <= e.last), len(after), max(after, default=e.at))


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
    return compose(_figures(seen, events, p), _live_server_evicted(week, p),
                   _search_evicted_live(search, p),
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
        # searched instants whose scheduler began after their midnight (a loaded runner):
        # they tested less than asked, and prove nothing held at that midnight
        "instants_past_midnight": sum(1 for o in seen if o.phase == "search"
                                      and (not o.ticks or o.ticks[0] > o.window.midnight)),
        "evicted_live": [m.as_fields() for o in seen for m in misfires(o, p.ttl_s)],
        "shrunk_instant": minimal.get("describe") if minimal else None})


def _live_server_evicted(week: list[Observed], p: Params) -> Findings:
    """The rule: every misfire in the week's windows, with its evidence."""
    return fail(*(m.describe() for o in week for m in misfires(o, p.ttl_s)))


def _search_evicted_live(search: list[Observed], p: Params) -> Findings:
    """The rule over the search: the instants Hypothesis tried that evicted a live server,
    said by the first one's evidence; where the search shrank to is only a figure."""
    failing = [(o, m) for o in search for m in misfires(o, p.ttl_s)]
    if not failing:
        return Findings()
    tried = len({(o.window.midnight, o.window.start) for o in search})
    bad = len({(o.window.midnight, o.window.start) for o, _ in failing})
    return fail(f"{failing[0][1].describe()}, at an instant Hypothesis tried "
                f"({bad} of {tried} instants evicted a live server)")


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
