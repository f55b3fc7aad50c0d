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
  gaps_over           liveness gaps of heartbeat samples longer than a limit
  missed_in_a_row     liveness gaps holding at least N failed samples
  rebooted            boot-id changes seen by a probe
  observer_starved    the observer's longest silence over a limit (inconclusive)
  stalls_over         stretches without progress longer than a limit, unless explained
  over_budget         a duration over its budget
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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
