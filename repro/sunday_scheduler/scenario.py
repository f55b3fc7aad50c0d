"""The sunday_scheduler run: the heartbeat job on servers whose clocks cross every midnight.

Roles: `srv-0` .. `srv-6` (Docker hosts), one per window of the week from `start`
(repro.sunday_scheduler.week: its seven midnights), all watched at once; then the
instants Hypothesis searches, one after another on `srv-0`. For each server and window:

1. the clock fault (repro.harness.faults.clock) sets the server's clock a little before
   the window's start (set once more, earlier, when setting it took so long that the clock
   had passed the start), running `speed` times faster (libfaketime: one continuous clock
   for the scheduler and everything it starts);
2. on that clock, the configuration's `scheduler` runs in the foreground with PERIOD_S,
   TZ and FIRE_LOG (one line, the epoch seconds, per firing), beside the harness's own
   ticker: `date +%s` every quarter period into a tick log, the host's clock read back
   and the harness's heartbeat on the host;
3. when the host's clock reaches the window's end, both stop; the logs are read back
   into one `op` event (name "window": the window, fires, ticks, the real time it began).

check.py runs the dead man's switch over the fire logs against the ticks. Fires and the
evictions it finds are also `mark` events (panels "fires", "evictions") placed at the
real time they happened, for the timeline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from random import Random

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from repro.harness.checks import Outcome, run_checker
from repro.harness.envelope import envelope
from repro.harness.faults.base import Applied, injected
from repro.harness.faults.clock import Clock
from repro.harness.history import History
from repro.harness.hosts import open_hosts
from repro.harness.hosts.base import Host
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run

from . import check, week
from .config import SundaySchedulerConfig

INCIDENT = "sunday_scheduler"
SCHEDULER = "/usr/local/bin/repro-scheduler"
FIRES, TICKS, PGID = "/tmp/repro-fires.log", "/tmp/repro-ticks.log", "/tmp/repro-sched.pgid"
LAUNCHER = "/tmp/repro-launch.sh"
CMD_TIMEOUT_S = 10.0
POLL_S = 0.2
LEAD_REAL_S = 3.0
SET_ATTEMPTS = 2   # a clock that passed the window's start before the launch: set again


def run(run_ctx: Run, cfg: SundaySchedulerConfig, label: str, expect: Outcome = Outcome.PASS
        ) -> IncidentResult:
    windows = week.week(week.parse_start(cfg.start, cfg.tz), cfg.tz, cfg.after_midnight)
    roles = [f"srv-{i}" for i in range(len(windows))]   # one server per midnight
    with envelope(run_ctx, INCIDENT, label, cfg.scheduler, cfg.provider, expect) as env, \
            open_hosts(cfg.provider, run_ctx, roles) as hosts:
        servers = [hosts[r] for r in roles]
        env.target = ",".join(h.name for h in servers)
        for h in servers:
            h.put(cfg.scheduler.read_bytes(), SCHEDULER, 0o755)
        watch(list(zip(servers, windows, strict=True)), cfg, env.history, "week")
        record_search(env.history, search(servers[0], cfg, env.history))
        params = check.Params(period_s=cfg.period_s, ttl_s=cfg.ttl, tz=cfg.tz)
        return env.result(run_checker(check.check, env.history.events(), params))


def watch(pairs: list[tuple[Host, week.Window]], cfg: SundaySchedulerConfig, history: History,
          phase: str) -> list[check.Observed]:
    """Each server watched over its window, all at once; what each saw."""
    with ThreadPoolExecutor(max_workers=len(pairs)) as pool:
        return list(pool.map(lambda hw: _watch_one(hw[0], cfg, hw[1], history, phase), pairs))


def _watch_one(h: Host, cfg: SundaySchedulerConfig, w: week.Window, history: History,
               phase: str) -> check.Observed:
    with _clock_before(h, cfg, w, history) as (clock, applied, began):
        h.put(_launcher(cfg, w.zone).encode(), LAUNCHER, 0o755)
        h.run(f"rm -f {FIRES} {TICKS}; setsid {clock.wrap(f'sh {LAUNCHER}')} "
              "> /tmp/repro-sched.log 2>&1 < /dev/null &", timeout=CMD_TIMEOUT_S)
        _until(clock, w.end, cfg.speed)
        h.run(f"kill -KILL -$(cat {PGID}) 2>/dev/null; true", timeout=CMD_TIMEOUT_S,
              check=False)
        seen = check.Observed(h.role, phase, w, _numbers(h, FIRES), _numbers(h, TICKS),
                              began, clock.start or w.start, cfg.speed, applied.shortfall)
    history.append("op", h.role, name="window", **seen.as_fields())
    for f in seen.fires:
        history.append("mark", h.role, t=seen.real(f), panel="fires", name="fire")
    for e in check.evictions(seen, cfg.ttl):
        history.append("mark", h.role, t=seen.real(e.at), panel="evictions", name="evicted")
    return seen


@contextmanager
def _clock_before(h: Host, cfg: SundaySchedulerConfig, w: week.Window, history: History
                  ) -> Iterator[tuple[Clock, Applied, float]]:
    """The host's clock set ahead of the window's start, running: (the clock, what the
    fault applied, the history time it was set at), healed when the block ends.

    Set LEAD_REAL_S early: the clock's own measurement and the launch take real time, and
    the scheduler must be running by the window's start. On a loaded runner the fault's
    rate measurement widens (up to 5 s) and a clock set 3 s early has passed the start, a
    week window's midnight sometimes too (measured: a first tick 259 s of host clock past
    it at load average 24); then it is healed and set once more, as early as the first
    setting took plus LEAD_REAL_S. The last attempt is used as it is: the checker judges
    a window that did not cross its midnight (inconclusive)."""
    lead = LEAD_REAL_S
    for attempt in range(1, SET_ATTEMPTS + 1):
        clock = Clock(h, start=w.start - lead * cfg.speed, speed=cfg.speed)
        began = history.now()   # the clock reads clock.start about now
        with injected(clock, history) as applied:
            took = history.now() - began
            if attempt == SET_ATTEMPTS or clock.now() <= w.start:
                yield clock, applied, began
                return
        lead = LEAD_REAL_S + took


def _launcher(cfg: SundaySchedulerConfig, zone: str) -> str:
    """Run on the fake clock in its own session: the harness's ticker beside the scheduler."""
    return (f"echo $$ > {PGID}\n"
            f"(while :; do date +%s >> {TICKS}; sleep {cfg.period_s / 4:g}; done) &\n"
            f"export PERIOD_S={cfg.period_s:g} TZ={zone} FIRE_LOG={FIRES}\n"
            f"exec {SCHEDULER}\n")


def _until(clock: Clock, end: float, speed: float) -> None:
    """Wait until the host's clock reads `end`: sleep the real time it should take, then
    read it back until it does (bounded: twice the expected time, at least 10 s)."""
    expected = max(0.0, (end - clock.now()) / speed)
    time.sleep(expected)  # the observation window, as long as the host's clock needs
    deadline = time.monotonic() + max(10.0, expected)
    while clock.now() < end and time.monotonic() < deadline:
        time.sleep(POLL_S)  # polling the host's clock for a condition


def _numbers(h: Host, path: str) -> list[float]:
    out = h.run(f"cat {path} 2>/dev/null; true", timeout=CMD_TIMEOUT_S, check=False).stdout
    return [float(x) for x in out.split() if x.replace(".", "", 1).isdigit()]


def search(h: Host, cfg: SundaySchedulerConfig, history: History
           ) -> tuple[week.Instant, week.Instant, int] | None:
    """Hypothesis over start instants and zones on one server: (first failing, shrunk,
    calls), or None when every instant tried held. Same seed, same instants."""
    if cfg.examples == 0:
        return None
    seen: dict[week.Instant, bool] = {}
    first: list[week.Instant] = []

    def fails(i: week.Instant) -> bool:
        if i not in seen:
            [obs] = watch([(h, i.window(cfg.after_midnight))], cfg, history, "search")
            seen[i] = bool(check.misfires(obs, cfg.ttl))
        if seen[i] and not first:
            first.append(i)
        return seen[i]

    budget = settings(max_examples=cfg.examples, database=None, deadline=None,
                      phases=(Phase.generate, Phase.shrink),
                      suppress_health_check=list(HealthCheck))
    try:
        minimal = find(week.instants(cfg.tz), fails, settings=budget, random=Random(cfg.seed))
    except NoSuchExample:
        return None
    return first[0], minimal, len(seen)


def record_search(history: History, found: tuple[week.Instant, week.Instant, int] | None,
                  ) -> None:
    if found is not None:
        first, minimal, tried = found
        history.append("op", "", name="minimal", describe=minimal.describe(),
                       zone=minimal.zone, day=minimal.day.isoformat(),
                       minutes_before=minimal.minutes_before,
                       first_describe=first.describe(), instants_tried=tried)

