"""The instants sunday_scheduler watches: the seven midnights of a week, and searched ones.

Model: a `Window` is a stretch of a host's clock that crosses one local midnight:
from `start` (epoch seconds) to `end`, around `midnight` (the epoch of that local
midnight in `zone`). `week(start, zone, after_s)` gives the seven windows of the week
that begins at `start` (every day-of-week boundary once): each starts as long before
its midnight as `start` was before the first one, and ends `after_s` after it. The
hours between are skipped: no day-of-week boundary lies in them.

`instants()` is Hypothesis's search space for one more window: a zone (the
configured one first, then zones whose daylight-saving changes happen at midnight or
whose offsets are odd), a date (the zone's DST changes, leap days, or any day of a
year) and how many minutes before that midnight the clock starts. It shrinks toward
the first zone, the first special date and one minute before midnight.
"""

from __future__ import annotations

import time
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from hypothesis import strategies as st

SEARCH_ZONES = ("UTC", "America/Santiago", "America/Havana", "Asia/Beirut",
                "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham")
LEAP_DAYS = (date(2028, 2, 29), date(2032, 2, 29))
SEARCH_YEAR = 2027


@dataclass(frozen=True)
class Window:
    zone: str
    start: float      # epoch seconds on the host's clock
    midnight: float   # the local midnight it crosses
    end: float

    def as_fields(self) -> dict[str, object]:
        return {"zone": self.zone, "start": self.start, "midnight": self.midnight,
                "end": self.end}


def local(t: float, zone: str, with_zone: bool = True) -> str:
    """"Sun 00:02:30 America/Los_Angeles": how a reason says a host-clock instant."""
    text = datetime.fromtimestamp(t, zoneinfo.ZoneInfo(zone)).strftime("%a %H:%M:%S")
    return f"{text} {zone}" if with_zone else text


def local_day(t: float, zone: str) -> str:
    return datetime.fromtimestamp(t, zoneinfo.ZoneInfo(zone)).strftime("%a %Y-%m-%d")


def midnight_of(day: date, zone: str) -> float:
    """The epoch of `day`'s local midnight in `zone` (where a DST change skips midnight,
    the instant the clock jumps over it)."""
    return datetime(day.year, day.month, day.day, tzinfo=zoneinfo.ZoneInfo(zone)).timestamp()


def default_start(zone: str, now: float | None = None) -> datetime:
    """The Saturday before `now` (local), 23:55."""
    today = datetime.fromtimestamp(time.time() if now is None else now,
                                   zoneinfo.ZoneInfo(zone)).date()
    saturday = today - timedelta(days=(today.weekday() - 5) % 7 or 7)
    return datetime(saturday.year, saturday.month, saturday.day, 23, 55,
                    tzinfo=zoneinfo.ZoneInfo(zone))


def parse_start(text: str, zone: str) -> datetime:
    if not text:
        return default_start(zone)
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=zoneinfo.ZoneInfo(zone))


def week(start: datetime, zone: str, after_s: float) -> list[Window]:
    """The seven windows, one per local midnight after `start`."""
    first = start.date() + timedelta(days=1)
    lead = midnight_of(first, zone) - start.timestamp()
    out = []
    for k in range(7):
        m = midnight_of(first + timedelta(days=k), zone)
        out.append(Window(zone, m - lead, m, m + after_s))
    return out


def dst_changes(zone: str, year: int = SEARCH_YEAR) -> list[date]:
    """The local dates on which `zone`'s UTC offset changes in `year`."""
    tz = zoneinfo.ZoneInfo(zone)
    t = datetime(year, 1, 1, tzinfo=tz).timestamp()
    days, offset = [], None
    for _ in range(365 * 8):  # every 3 hours of the year
        d = datetime.fromtimestamp(t, tz)
        if offset is not None and d.utcoffset() != offset:
            days.append(d.date())
        offset = d.utcoffset()
        t += 3 * 3600
    return days


@dataclass(frozen=True)
class Instant:
    zone: str
    day: date         # the date whose midnight (its start) is crossed
    minutes_before: int

    def window(self, after_s: float) -> Window:
        m = midnight_of(self.day, self.zone)
        return Window(self.zone, m - 60 * self.minutes_before, m, m + after_s)

    def describe(self) -> str:
        return (f"{self.minutes_before} min before {self.day:%a %Y-%m-%d} 00:00 "
                f"{self.zone}")


@st.composite
def instants(draw: st.DrawFn, first_zone: str) -> Instant:
    zone = draw(st.sampled_from((first_zone, *[z for z in SEARCH_ZONES if z != first_zone])))
    special = sorted({*dst_changes(zone), *LEAP_DAYS})
    day = draw(st.one_of(st.sampled_from(special), st.integers(0, 364).map(
        lambda n: date(SEARCH_YEAR, 1, 1) + timedelta(days=n))))
    return Instant(zone, day, draw(st.integers(1, 5)))
