"""The sunday_scheduler oracle on hand-written windows: every branch of the verdict."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from repro.harness.checks import Outcome
from repro.harness.history import Event

from ..check import Observed, Params, check
from ..week import Window, week

TZ = "America/Los_Angeles"
P = Params(period_s=60.0, ttl_s=150.0, tz=TZ)
START = datetime(2026, 11, 28, 23, 55, tzinfo=ZoneInfo(TZ))   # a Saturday
WEEK = week(START, TZ, after_s=270.0)


def observed(w: Window, *, skip_sunday: bool = False, stall: tuple[float, float] | None = None,
             shortfall: str = "", server: str = "srv-0") -> Observed:
    ticks = [w.start + 15 * i for i in range(int((w.end - w.start) / 15) + 1)]
    if stall:
        ticks = [t for t in ticks if not stall[0] <= t < stall[1]]
    sunday = datetime.fromtimestamp(w.midnight + 1, ZoneInfo(TZ)).weekday() == 6
    fires = [t for t in ticks[::4] if not (skip_sunday and sunday and t >= w.midnight)]
    return Observed(server, "week", w, fires, ticks, 0.0, w.start, 120.0, shortfall)


def events(obs: list[Observed]) -> list[Event]:
    return [Event(t=float(i), kind="op", host=o.server, fields={"name": "window",
                  **o.as_fields()}) for i, o in enumerate(obs)]


def test_a_heartbeat_every_day_passes() -> None:
    v = check(events([observed(w) for w in WEEK]), P)
    assert v.outcome is Outcome.PASS, v.describe()
    assert v.figures["misfires"] == 0 and v.figures["week_clock_covered_h"] > 144


def test_no_heartbeat_on_sunday_is_a_misfire_named_in_local_time() -> None:
    v = check(events([observed(w, skip_sunday=True) for w in WEEK]), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons == ("evicted srv-0 at Sun 00:01:30 America/Los_Angeles: no heartbeat "
                         "since Sat 23:59:00",), v.reasons


def test_a_stalled_host_proves_nothing() -> None:
    sunday = WEEK[0]
    obs = [observed(sunday, skip_sunday=True, stall=(sunday.midnight, sunday.midnight + 200))]
    v = check(events(obs + [observed(w) for w in WEEK[1:]]), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert any("the host stalled" in r for r in v.reasons)


def test_a_stall_that_explains_no_eviction_is_judged() -> None:
    monday = WEEK[1]
    obs = [observed(w) for w in WEEK if w is not monday]
    obs.append(observed(monday, stall=(monday.midnight - 40, monday.midnight + 60)))
    v = check(events(obs), P)
    assert v.outcome is Outcome.PASS, v.describe()


def test_a_week_not_covered_is_inconclusive() -> None:
    v = check(events([observed(w) for w in WEEK[:6]]), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("midnight into Sat" in r for r in v.reasons), v.reasons


def test_a_clock_that_did_not_land_is_inconclusive() -> None:
    obs = [observed(WEEK[0], shortfall="the host's clock runs 3x, not 120x")]
    v = check(events(obs + [observed(w) for w in WEEK[1:]]), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("the clock did not land" in r for r in v.reasons)


def test_the_week_has_seven_midnights_one_per_day() -> None:
    days = [datetime.fromtimestamp(w.midnight, ZoneInfo(TZ)).strftime("%a %H:%M") for w in WEEK]
    assert days == ["Sun 00:00", "Mon 00:00", "Tue 00:00", "Wed 00:00", "Thu 00:00",
                    "Fri 00:00", "Sat 00:00"]
    assert all(w.midnight - w.start == 300 for w in WEEK)
