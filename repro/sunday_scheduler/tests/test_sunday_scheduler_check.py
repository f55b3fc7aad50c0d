"""The sunday_scheduler oracle on hand-written windows: every branch of the verdict.

The schedulers are modelled by the local weekdays on which they do not fire: the pre-fix
one (0- vs 1-based weekdays) never fires on a Sunday, by the host's clock, whichever
window it is in; variants skip another day or fire less often than the switch needs.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from repro.harness.checks import Outcome
from repro.harness.history import Event

from ..check import Observed, Params, check
from ..week import Instant, Window, week

TZ = "America/Los_Angeles"
P = Params(period_s=60.0, ttl_s=150.0, tz=TZ)
START = datetime(2026, 11, 28, 23, 55, tzinfo=ZoneInfo(TZ))   # a Saturday
WEEK = week(START, TZ, after_s=270.0)
SUN, WED = 6, 2
MONDAY = date(2027, 3, 15)    # the day after the US DST change (a Sunday)


def _weekday(t: float) -> int:
    return datetime.fromtimestamp(t, ZoneInfo(TZ)).weekday()


def observed(w: Window, *, skip_days: frozenset[int] = frozenset(), every: int = 4,
             stall: tuple[float, float] | None = None, shortfall: str = "",
             server: str = "srv-0", phase: str = "week") -> Observed:
    """A window as a host would report it: the harness's ticks every 15 s (a quarter
    period) from the window's start to its end, and a fire every `every` ticks except on
    the local weekdays in `skip_days` (by the host's clock, as a scheduler reads it)."""
    ticks = [w.start + 15 * i for i in range(int((w.end - w.start) / 15) + 1)]
    if stall:
        ticks = [t for t in ticks if not stall[0] <= t < stall[1]]
    fires = [t for t in ticks[::every] if _weekday(t) not in skip_days]
    return Observed(server, phase, w, fires, ticks, 0.0, w.start, 120.0, shortfall)


def prefix(w: Window, *, stall: tuple[float, float] | None = None, shortfall: str = ""
           ) -> Observed:
    """The pre-fix scheduler: no fire on a Sunday."""
    return observed(w, skip_days=frozenset({SUN}), stall=stall, shortfall=shortfall)


def events(obs: list[Observed], shrunk: Instant | None = None) -> list[Event]:
    out = [Event(t=float(i), kind="op", host=o.server, fields={"name": "window",
                 **o.as_fields()}) for i, o in enumerate(obs)]
    if shrunk is not None:
        out.append(Event(t=float(len(out)), kind="op", host="", fields={
            "name": "minimal", "describe": shrunk.describe(), "day": shrunk.day.isoformat()}))
    return out


def searched(*instants: Instant, skip_days: frozenset[int] = frozenset()) -> list[Observed]:
    return [observed(i.window(270.0), skip_days=skip_days, phase="search") for i in instants]


def test_a_heartbeat_every_day_passes() -> None:
    v = check(events([observed(w) for w in WEEK]), P)
    assert v.outcome is Outcome.PASS, v.describe()
    assert v.figures["misfires"] == 0 and v.figures["week_clock_covered_h"] > 144
    assert v.figures["evicted_live"] == []


def test_a_good_scheduler_holds_at_every_instant_searched_too() -> None:
    # the local minima of the pre-fix search, on a scheduler that fires every day
    tried = searched(Instant(TZ, MONDAY, 5), Instant(TZ, date(2027, 3, 14), 1),
                     Instant("Pacific/Chatham", date(2028, 2, 29), 3))
    v = check(events([observed(w) for w in WEEK] + tried), P)
    assert v.outcome is Outcome.PASS, v.describe()
    assert v.figures["instants_tried"] == 3 and v.figures["misfires"] == 0
    assert v.figures["instants_past_midnight"] == 0


def test_a_searched_instant_begun_past_its_midnight_is_counted() -> None:
    late = Instant(TZ, MONDAY, 1).window(270.0)
    began = Window(late.zone, late.midnight + 30, late.midnight, late.end)
    v = check(events([observed(w) for w in WEEK]
                     + [observed(began, phase="search")]), P)
    assert v.outcome is Outcome.PASS, v.describe()
    assert v.figures["instants_past_midnight"] == 1


def test_a_heartbeat_every_other_period_is_within_the_switch() -> None:
    # a variant: fires 120 s apart, under the 150 s ttl
    v = check(events([observed(w, every=8) for w in WEEK]), P)
    assert v.outcome is Outcome.PASS, v.describe()


def test_no_heartbeat_on_sunday_evicts_live_servers_named_in_local_time() -> None:
    v = check(events([prefix(w) for w in WEEK]), P)
    assert v.outcome is Outcome.FAIL
    # the window into Sunday, and the Monday window, which starts 5 min before its
    # midnight: on Sunday's clock, before any fire
    assert v.reasons == (
        "a live server evicted: srv-0 at Sun 00:01:30 America/Los_Angeles, no heartbeat "
        "since Sat 23:59:00 (its last of 5 in its window over Sun 2026-11-29); the "
        "harness's ticks on it went on to Sun 00:04:30 (12 after the eviction)",
        "a live server evicted: srv-0 at Sun 23:57:30 America/Los_Angeles, no heartbeat "
        "since it registered at Sun 23:55:00 (none in its window over Mon 2026-11-30); the "
        "harness's ticks on it went on to Mon 00:04:30 (28 after the eviction)"), v.reasons
    assert [m["window_day"] for m in v.figures["evicted_live"]] == ["Sun 2026-11-29",
                                                                   "Mon 2026-11-30"]


def test_the_evidence_is_the_figure_beside_the_failure() -> None:
    v = check(events([prefix(w) for w in WEEK]), P)
    first = v.figures["evicted_live"][0]
    assert first == {"server": "srv-0", "phase": "week", "window_day": "Sun 2026-11-29",
                     "evicted_at": WEEK[0].midnight + 90,
                     "evicted_local": "Sun 00:01:30 America/Los_Angeles",
                     "last_heartbeat_local": "Sat 23:59:00 America/Los_Angeles",
                     "fires_before": 5, "ticks_after": 12,
                     "alive_until_local": "Sun 00:04:30 America/Los_Angeles"}


def test_a_monday_window_started_early_is_a_live_server_evicted_whatever_the_shrink() -> None:
    # the local minimum the reviewer found: Hypothesis may stop at a Monday whose window
    # starts 3 minutes early; its server is evicted on Sunday night, before any fire
    monday = Instant(TZ, MONDAY, 3)
    v = check(events([observed(w) for w in WEEK] + searched(monday, skip_days=frozenset({SUN})),
                     shrunk=monday), P)
    assert v.outcome is Outcome.FAIL, v.describe()
    assert v.reasons == (
        "a live server evicted: srv-0 at Sun 23:59:30 America/Los_Angeles, no heartbeat "
        "since it registered at Sun 23:57:00 (none in its window over Mon 2027-03-15); the "
        "harness's ticks on it went on to Mon 00:04:30 (20 after the eviction), at an "
        "instant Hypothesis tried (1 of 1 instants evicted a live server)",), v.reasons
    [m] = v.figures["evicted_live"]
    assert (m["phase"], m["fires_before"], m["ticks_after"]) == ("search", 0, 20)
    assert v.figures["shrunk_instant"] == "3 min before Mon 2027-03-15 00:00 " + TZ


def test_a_monday_window_two_minutes_early_outlives_the_switch() -> None:
    # 120 s of Sunday without a fire is under the 150 s ttl: Monday's first fire saves it
    v = check(events([observed(w) for w in WEEK]
                     + searched(Instant(TZ, MONDAY, 2), skip_days=frozenset({SUN}))), P)
    assert v.outcome is Outcome.PASS, v.describe()


def test_a_scheduler_that_skips_wednesday_is_caught_on_wednesday() -> None:
    # a variant the postmortem did not have: the oracle knows no weekday
    v = check(events([observed(w, skip_days=frozenset({WED})) for w in WEEK]), P)
    assert v.outcome is Outcome.FAIL
    assert [m["evicted_local"] for m in v.figures["evicted_live"]] == [
        "Wed 00:01:30 America/Los_Angeles", "Wed 23:57:30 America/Los_Angeles"]


def test_a_heartbeat_slower_than_the_switch_evicts_every_day() -> None:
    # a variant: fires 180 s apart, over the 150 s ttl
    v = check(events([observed(w, every=12) for w in WEEK]), P)
    assert v.outcome is Outcome.FAIL
    assert len(v.figures["evicted_live"]) == 7


def test_a_prefix_week_that_never_reached_an_eviction_is_inconclusive() -> None:
    # windows 2 min before each midnight and 1 min after: no silence reaches the ttl, so
    # the pre-fix scheduler cannot show, and nothing is green
    short = week(START.replace(minute=58), TZ, after_s=60.0)
    v = check(events([prefix(w) for w in short]), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert v.reasons == ("the hosts' clocks did not cover the midnight into Mon, Tue, Wed, "
                         "Thu, Fri, Sat, Sun (read back from the hosts)",), v.reasons


def test_a_stalled_host_proves_nothing() -> None:
    sunday = WEEK[0]
    obs = [prefix(sunday, stall=(sunday.midnight, sunday.midnight + 200))]
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
    obs = [prefix(WEEK[0], shortfall="the host's clock runs 3x, not 120x")]
    v = check(events(obs + [observed(w) for w in WEEK[1:]]), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("the clock did not land" in r for r in v.reasons)
    assert v.figures["evicted_live"] == []


def test_the_week_has_seven_midnights_one_per_day() -> None:
    days = [datetime.fromtimestamp(w.midnight, ZoneInfo(TZ)).strftime("%a %H:%M") for w in WEEK]
    assert days == ["Sun 00:00", "Mon 00:00", "Tue 00:00", "Wed 00:00", "Thu 00:00",
                    "Fri 00:00", "Sat 00:00"]
    assert all(w.midnight - w.start == 300 for w in WEEK)
