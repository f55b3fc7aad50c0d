"""Named checker rules and how they compose into one verdict (after Jepsen's composed checkers).

Model. A rule is a pure function of the history (or of the part of it a checker selected)
and of the incident's limits. It returns `Findings`:

  failures      what it saw go wrong (the incident came back), each saying where and when
  inconclusive  why the run proves nothing for its part (the fault did not take effect,
                the observer could not see)
  figures       what it measured

A checker is a composition of rules: `compose(*findings)` merges them in the order given
(failures in that order, inconclusive reasons in that order, figures in that order, a later
key replacing an earlier one) and ranks the result with `Verdict.judge`, so an observed
failure outranks every inconclusive reason, which stays listed beside it. The order of
composition is the order of the reasons: a checker composes its most telling rule first.
(mongo_index_lock's rules add to one `Findings` in turn instead: the same merge, in place.)

Shared rules decide; the incident words. Each takes `since` (how a time is said: "at 3.20 s",
"+1.25 s after the flood began") and, where incidents say the same finding in different
terms, `say` (the whole reason for one finding); the defaults are plain. Shared rules judge
and measure nothing: an incident's figures are its own, from a measuring step it composes
first (which keeps their order).

  fault_took_effect   a `fault.start` of the fault (on the host) is in the history, and it
                      recorded no shortfall
  given               the rules that depend on the fault judged only once it took
  gaps_over           liveness gaps of heartbeat samples longer than a limit
  missed_in_a_row     liveness gaps holding at least N failed samples
  rebooted            boot-id changes seen by a probe
  observer_starved    the observer's longest silence over a limit (inconclusive)
  stalls_over         stretches without progress longer than a limit, unless explained
  over_budget         a duration over its budget
  steady_before       the steady-state hypothesis held before the fault (else inconclusive)
  recovered_within    back in the pre-fault band within a limit after the heal, and staying

Steady state (after Chaos Toolkit's steady-state hypothesis, checked before the method and
again after it): an incident samples its metrics as `(t, {name: value})`; `band_of` makes
each metric's band from what it kept before the fault (widened by a slack, never narrower
than a tolerance the hypothesis states); `steady_state` measures when, after the heal,
every metric came back within its band and stayed there `hold_s`: the time to recover.
Measuring helpers of the observer itself: `percentile`, `freezes` (gaps in the harness's
own clock ticks), `observed_s` (time not inside a freeze).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from repro.harness.checks import Gap, Reboot, Verdict, liveness_gaps, longest_silence, reboots
from repro.harness.history import Event

Since = Callable[[float], str]


def at(t: float) -> str:
    """The default way to say a time: "at 3.20 s" (seconds on the run's clock)."""
    return f"at {t:.2f} s"


@dataclass
class Findings:
    """What one rule (or a merge of rules) found; its verdict is `Verdict.judge` of it."""

    failures: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def verdict(self) -> Verdict:
        return Verdict.judge(self.failures, self.inconclusive, self.figures)


def fail(*reasons: str) -> Findings:
    return Findings(failures=list(reasons))


def inconclusive(*reasons: str) -> Findings:
    return Findings(inconclusive=list(reasons))


def merge(*parts: Findings) -> Findings:
    """One `Findings` of several, in order: reasons concatenated, figures updated in turn."""
    out = Findings()
    for part in parts:
        out.failures += part.failures
        out.inconclusive += part.inconclusive
        out.figures.update(part.figures)
    return out


def compose(*parts: Findings) -> Verdict:
    """The verdict of rules' findings merged in the order given (failure first)."""
    return merge(*parts).verdict()


def given(took: Findings, *parts: Findings) -> Findings:
    """Fault first, then judgement: `parts` judged only once `took` shows the fault took.

    `parts` are the rules that can fire *because* the fault did not take (nobody took over
    from a leader that was never killed; no alarm for a backlog that never formed). When
    `took` holds an inconclusive reason, their failures and inconclusive reasons are
    dropped and only their figures kept, so the run is inconclusive for that reason alone.
    Otherwise the merge of `parts` then `took`. Rules that hold whatever the fault did
    (split brain, a healthy control window) stay outside `given`.
    """
    if took.inconclusive:
        return merge(*(Findings(figures=dict(p.figures)) for p in parts), took)
    return merge(*parts, took)


# -- faults ---------------------------------------------------------------------------------

def fault_events(events: Iterable[Event], kind: str, fault: str, host: str | None = None
                 ) -> list[Event]:
    """The `fault.<kind>` events (start, stop, measure) of one fault, of one host if given."""
    return [e for e in events if e.kind == f"fault.{kind}" and e.get("fault") == fault
            and (host is None or e.host == host)]


def fault_took_effect(events: Iterable[Event], fault: str, *, never: str,
                      host: str | None = None, shortfall: str | None = None) -> Findings:
    """Inconclusive when no `fault.start` of `fault` (on `host`) is in the history (reason
    `never`), or when the latest one recorded a shortfall (reason "`shortfall`: what it
    missed"; `shortfall=None`: the incident judges the fault's shortfall itself, e.g. when
    the incident's own collapse can explain it)."""
    starts = fault_events(events, "start", fault, host)
    if not starts:
        return inconclusive(never)
    missed = starts[-1].get("shortfall")
    if shortfall is not None and missed:
        return inconclusive(f"{shortfall}: {missed}")
    return Findings()


# -- liveness -------------------------------------------------------------------------------

def _gap_over(g: Gap, limit_s: float, since: Since) -> str:
    tail = ", still down when observation ended" if g.ongoing else ""
    return (f"{g.host} did not answer for {g.length:.2f} s (limit {limit_s:g} s) "
            f"{since(g.start)}{tail}")


def gaps_over(samples: Iterable[Event], limit_s: float, *, end: float | None = None,
              since: Since = at, say: Callable[[Gap], str] | None = None) -> Findings:
    """A failure for every liveness gap (`checks.liveness_gaps`: from the last answered sample
    to the next, or to `end`) longer than `limit_s`, in the order found."""
    return fail(*((say(g) if say else _gap_over(g, limit_s, since))
                  for g in liveness_gaps(samples, end=end) if g.length > limit_s))


def lost_gaps(samples: Sequence[Event], misses: int, *, end: float | None = None
         ) -> list[tuple[Gap, int]]:
    """The liveness gaps holding at least `misses` failed samples, with their count: a host
    that missed that many answers in a row was gone, not slow."""
    out = []
    for g in liveness_gaps(samples, end=end):
        n = sum(1 for e in samples if e.host == g.host and g.start < e.t <= g.end
                and not e.get("ok"))
        if n >= misses:
            out.append((g, n))
    return out


def missed_in_a_row(samples: Sequence[Event], misses: int, *, end: float | None = None,
                    since: Since = at) -> Findings:
    """A failure for every gap in which `misses` samples in a row went unanswered (`lost_gaps`)."""
    return fail(*(f"heartbeat lost the host for {g.length:.2f} s ({n} missed samples in a "
                  f"row, limit {misses - 1}) {since(g.start)}"
                  + (", still down when observation ended" if g.ongoing else "")
                  for g, n in lost_gaps(samples, misses, end=end)))


def rebooted(samples: Iterable[Event], *, since: Since = at,
             say: Callable[[Reboot], str] | None = None) -> Findings:
    """A failure for every change of boot id a probe saw (`checks.reboots`)."""
    return fail(*((say(r) if say else f"{r.host} rebooted: boot id {r.old[:8]} -> "
                   f"{r.new[:8]}, seen by the heartbeat {since(r.t)}")
                  for r in reboots(samples)))


def observer_starved(samples: Iterable[Event], limit_s: float, *,
                     what: str = "heartbeat sample") -> Findings:
    """Inconclusive when the observer went longer than `limit_s` without a sample: a gap
    that long could have gone unseen."""
    silence = longest_silence(samples)
    if silence <= limit_s:
        return Findings()
    return inconclusive(f"the observer was starved: {silence:.2f} s without a {what} "
                        f"(limit {limit_s} s), so a gap could have gone unseen")


# -- progress -------------------------------------------------------------------------------

class Span(Protocol):
    """A stretch of time: a liveness gap, a stall."""

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...


S = TypeVar("S", bound=Span)


def overlaps(a: Span, b: Span) -> bool:
    """The two closed stretches share an instant."""
    return a.start <= b.end and b.start <= a.end


def stalls_over(spans: Iterable[S], limit_s: float, *, explained: Sequence[Span] = (),
                since: Since = at, say: Callable[[S], str] | None = None) -> Findings:
    """A failure for every stretch without progress longer than `limit_s` that no
    `explained` stretch overlaps (e.g. a session freeze inside a network gap is the gap)."""
    return fail(*((say(s) if say else f"no progress for {s.end - s.start:.2f} s (limit "
                   f"{limit_s:g} s) {since(s.start)}")
                  for s in spans if s.end - s.start > limit_s
                  and not any(overlaps(s, x) for x in explained)))


def over_budget(what: str, elapsed_s: float, budget_s: float, detail: str = "") -> Findings:
    """A failure when `what` ran longer than its budget: "<what> ran 75 s, over its 60 s
    budget<detail>"."""
    if elapsed_s <= budget_s:
        return Findings()
    return fail(f"{what} ran {elapsed_s:.0f} s, over its {budget_s:g} s budget{detail}")


# -- the observer ---------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def freezes(events: Iterable[Event], min_s: float, kind: str = "tick"
            ) -> list[tuple[float, float]]:
    """Gaps of at least `min_s` between the harness's own clock ticks (`tick` events, which
    touch nothing): the stretches the harness itself was not running."""
    ticks = sorted(e.t for e in events if e.kind == kind)
    return [(a, b) for a, b in itertools.pairwise(ticks) if b - a >= min_s]


def observed_s(start: float, end: float, frozen: Sequence[tuple[float, float]]) -> float:
    """How much of [start, end] the harness was not frozen for."""
    return (end - start) - sum(max(0.0, min(end, b) - max(start, a)) for a, b in frozen)


# -- steady state ---------------------------------------------------------------------------

Sample = tuple[float, Mapping[str, float]]  # (t, {metric: value})


@dataclass(frozen=True)
class Band:
    """The values a metric may take in steady state (closed; infinite ends are open)."""

    low: float = -math.inf
    high: float = math.inf

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        if self.low == -math.inf:
            return f"<= {self.high:g}"
        if self.high == math.inf:
            return f">= {self.low:g}"
        return f"{self.low:g}..{self.high:g}"


def band_of(values: Sequence[float], *, slack: float = 0.0, rel: float = 0.0,
            at_least: Band | None = None, lower: bool = True, upper: bool = True) -> Band:
    """The band `values` kept (min..max) widened on each side by `slack` + `rel` x the
    larger magnitude, never narrower than `at_least` (the hypothesis' own tolerance);
    `lower=False` leaves it open below (a metric only bad when high: queue depth, latency),
    `upper=False` open above (a success rate). No values: the tolerance, or everything."""
    if not values:
        return at_least or Band()
    lo, hi = min(values), max(values)
    pad = slack + rel * max(abs(lo), abs(hi))
    band = Band(lo - pad if lower else -math.inf, hi + pad if upper else math.inf)
    if at_least is not None:
        band = Band(min(band.low, at_least.low), max(band.high, at_least.high))
    return band


@dataclass(frozen=True)
class SteadyState:
    """What `steady_state` measured: the bands, and when the metrics came back into them."""

    bands: Mapping[str, Band]
    baseline_samples: int
    healed_t: float
    hold_s: float
    end_t: float
    returned_t: float | None   # first time after the heal from which all held for hold_s
    in_band_since: float | None  # the last in-band stretch, when it had not held long enough
    out_at_end: tuple[str, ...] = ()  # metrics out of band at the last sample
    relapsed_t: float | None = None   # out of band again after it had returned

    @property
    def recovery_s(self) -> float | None:
        return None if self.returned_t is None else self.returned_t - self.healed_t

    def figures(self, prefix: str = "") -> dict[str, object]:
        rec = self.recovery_s
        return {f"{prefix}recovery_s": None if rec is None else round(rec, 2),
                f"{prefix}steady_bands": {k: str(b) for k, b in self.bands.items()}}


def steady_state(samples: Sequence[Sample], *, healed_t: float, hold_s: float,
                 bands: Mapping[str, Band], baseline_samples: int = 0,
                 end_t: float | None = None) -> SteadyState:
    """When every metric was back within its band after `healed_t` and stayed there for
    `hold_s` (by the samples: the first in-band sample of a stretch that held that long).
    A metric missing from a sample counts as in band."""
    after = sorted((s for s in samples if s[0] >= healed_t), key=lambda s: s[0])
    end = end_t if end_t is not None else (after[-1][0] if after else healed_t)

    def outside(values: Mapping[str, float]) -> list[str]:
        return [k for k, b in bands.items() if k in values and not b.holds(values[k])]

    returned: float | None = None
    since: float | None = None
    relapsed: float | None = None
    for t, values in after:
        out = outside(values)
        if out:
            if returned is not None and relapsed is None:
                relapsed = t
            since = None
            continue
        if since is None:
            since = t
        if returned is None and t - since >= hold_s:
            returned = since
    if returned is None and since is not None and end - since >= hold_s:
        returned = since  # held to the end of observation
    last_out = tuple(outside(after[-1][1])) if after else ()
    return SteadyState(dict(bands), baseline_samples, healed_t, hold_s, end, returned,
                       since if returned is None else None, last_out, relapsed)


def steady_before(samples: Sequence[Sample], *, fault_t: float, min_samples: int,
                  tolerance: Mapping[str, Band] | None = None,
                  what: str = "the system") -> Findings:
    """Inconclusive when the steady-state hypothesis cannot be said to have held before the
    fault: fewer than `min_samples` samples before it (no band to return to), or a sample
    outside the hypothesis' `tolerance`."""
    before = [s for s in samples if s[0] < fault_t]
    if len(before) < min_samples:
        return inconclusive(f"too little steady state before the fault to return to: "
                            f"{len(before)} samples of {what} (at least {min_samples})")
    for t, values in before:
        out = [f"{k} {values[k]:g} (not {b})" for k, b in (tolerance or {}).items()
               if k in values and not b.holds(values[k])]
        if out:
            return inconclusive(f"{what} was not in steady state before the fault: "
                                f"{', '.join(out)} at {t:.2f} s")
    return Findings()


def recovered_within(state: SteadyState, limit_s: float | None, *, what: str = "steady state",
                     say: Callable[[SteadyState], str] | None = None) -> Findings:
    """A failure when `what` never came back within its pre-fault band (and stayed
    `hold_s`) before observation ended, or came back more than `limit_s` after the heal
    (`limit_s=None`: only never)."""
    bands = ", ".join(f"{k} {b}" for k, b in state.bands.items())
    if state.returned_t is None:
        if say:
            return fail(say(state))
        tail = (f"; in band since {state.in_band_since - state.healed_t:+.2f} s, not yet for "
                f"{state.hold_s:g} s" if state.in_band_since is not None else
                f"; out of band at the end: {', '.join(state.out_at_end)}")
        return fail(f"{what} had not returned to its pre-fault band ({bands}) "
                    f"{state.end_t - state.healed_t:.2f} s after the heal, when observation "
                    f"ended{tail}")
    rec = state.recovery_s or 0.0
    if limit_s is not None and rec > limit_s:
        return fail(say(state) if say else
                    f"{what} took {rec:.2f} s to return to its pre-fault band ({bands}) after "
                    f"the heal (limit {limit_s:g} s)")
    return Findings()
