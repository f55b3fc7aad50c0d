"""The oracle: was the incident declared resolved when the queue was back to normal, and not before?

Model: a pure function of the history, composed of named rules (repro.harness.rules).
The fault window is `fault.start` .. `fault.stop` of the freeze of the replicas (fault
"pause" on "replicas"). The harness's own queue samples (`queue`: depth, oldest queued
job's age, done) give the steady state (rules.steady_state): each metric's band is
what it kept in the second half of the baseline, plus a slack; steady state has
returned at the first moment after the heal from which depth and age stayed in their
bands for `hold_s`. The resolution check's runs (`resolution`: rc, polled every second
from the fault's start) give the declaration: its first exit 0 *after it first
reported the incident* (a non-zero exit), each run dated by its exit (when its answer
exists; the process's start-up is not the check's view). In the fault's first second no
backlog has
formed yet, so any check, a correct one too, still says "resolved": an exit 0 before
the check has seen the incident declares nothing (those polls are counted).

  fail          declared before steady state returned (more than one poll early),
                naming how many jobs were still queued then and how old the oldest was,
                and when steady state did return; declared more than `grace_s` after it
                returned; never declared though steady state returned and `grace_s` passed;
                the check never reported the incident at all (exit 0 on every poll)
  inconclusive  the freeze never started or missed; a replica answered a probe query while
                frozen (the freeze did not hold; it then counts as healed there); jobs kept
                finishing during it (the
                workers did not stall); no backlog formed (fewer than `min_backlog` queued
                at the worst, or not above the band); too little baseline for a band;
                steady state never returned in the observation and nothing was declared
                (nothing to judge against); observation ended inside the grace with
                nothing declared; the sampler went silent for over 2 s; a producer or
                worker thread died; the check never ran
  pass          declared within [steady state returned - one poll, + grace_s]

Fault first, then judgement (rules.given): every failure above is a judgement of the
declaration, and a correct check cannot be judged on a freeze that did not take (it never
alarms on a queue that never backed up). So the declaration is judged only once the freeze
started with no shortfall, held, stalled the workers and formed a backlog; a run where it
did not is inconclusive for that reason alone, the declaration's figures kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from repro.harness.checks import Verdict
from repro.harness.history import Event
from repro.harness.rules import (
    Findings,
    Sample,
    SteadyState,
    band_of,
    compose,
    fail,
    fault_events,
    fault_took_effect,
    given,
    inconclusive,
    merge,
    observer_starved,
    steady_before,
    steady_state,
)

FAULT = "pause"
TARGET = "replicas"
QUERY_DEADLINE_S = 1.0  # the node probe's: a query in flight as the freeze began ends by then


@dataclass(frozen=True)
class Params:
    hold_s: float = 3.0
    grace_s: float = 15.0
    depth_slack: float = 5.0
    age_slack_s: float = 1.0
    min_backlog: int = 20
    workers: int = 4
    poll_s: float = 1.0          # a declaration up to one poll early is not "before"
    sampler_gap_s: float = 2.0
    min_baseline_samples: int = 8


@dataclass(frozen=True)
class Declaration:
    first_alarm: float | None   # the first non-zero exit (the check reported the incident)
    declared: float | None      # the first exit 0 after that
    polls: int
    early_zero: int             # exit 0 before the first alarm


def samples(events: Sequence[Event]) -> list[Sample]:
    return [(e.t, {"depth": float(e.get("depth", 0)), "oldest_age_s":
                   float(e.get("oldest_age_s", 0.0))}) for e in events if e.kind == "queue"]


def declaration(events: Sequence[Event], since: float) -> Declaration:
    """When the check said so: each run counts at its exit (started + took_s), the moment
    its answer exists (a slow start-up under load must not date it early)."""
    runs = sorted(((e.t + float(e.get("took_s", 0.0)), e.get("rc")) for e in events
                   if e.kind == "resolution" and e.t >= since - 0.5), key=lambda r: r[0])
    alarm = next((t for t, rc in runs if rc != 0), None)
    declared = next((t for t, rc in runs if alarm is not None and t > alarm and rc == 0), None)
    early = sum(1 for t, rc in runs if rc == 0 and (alarm is None or t < alarm))
    return Declaration(alarm, declared, len(runs), early)


def nearest(queue: Sequence[Event], t: float) -> Event | None:
    return min(queue, key=lambda e: abs(e.t - t), default=None)


def steady(events: Sequence[Event], p: Params, s0: float, s1: float,
           end: float | None = None) -> SteadyState:
    """The queue's steady state (the scenario asks this live to know when to stop)."""
    got = samples(events)
    base = [v for t, v in got if s0 - (s0 - got[0][0]) / 2 <= t < s0] if got else []
    bands = {"depth": band_of([v["depth"] for v in base], slack=p.depth_slack, lower=False),
             "oldest_age_s": band_of([v["oldest_age_s"] for v in base], slack=p.age_slack_s,
                                     lower=False)}
    return steady_state(got, healed_t=s1, hold_s=p.hold_s, bands=bands,
                        baseline_samples=len(base), end_t=end)


def check(events: list[Event], p: Params) -> Verdict:
    """Fault first, then judgement (`rules.given`): the declaration is judged only once the
    freeze is shown to have taken (applied, held, the workers stalled, a backlog formed).
    Without that a correct check never alarms and "never reported the incident" would be
    the freeze's failure, not the check's: such a run is inconclusive for that alone."""
    events = sorted(events, key=lambda e: e.t)
    starts = fault_events(events, "start", FAULT, TARGET)
    if not starts:
        return compose(inconclusive("the replicas were never frozen"))
    s0 = starts[0].t
    stops = fault_events(events, "stop", FAULT, TARGET)
    end = events[-1].t
    held, s1 = held_rule(events, s0, stops[0].t if stops else end)
    queue = [e for e in events if e.kind == "queue"]
    state = steady(events, p, s0, s1, end)
    took = merge(fault_took_effect(events, FAULT, host=TARGET, never="",
                                   shortfall="the freeze did not take"),
                 held, stall_rule(queue, p, s0, s1), backlog_rule(queue, state, p, s0))
    return compose(Findings(figures={"fault_s": round(s1 - s0, 2), **state.figures()}),
                   given(took, declaration_rule(events, queue, state, p, s0, s1, end)),
                   steady_before(samples(events), fault_t=s0,
                                 min_samples=p.min_baseline_samples, what="the queue"),
                   observer_starved(queue, p.sampler_gap_s, what="queue sample"),
                   inconclusive(*(f"the queue's {e.host} died at {e.t:.2f} s: "
                                  f"{e.get('error')}" for e in events
                                  if e.kind == "queue.died")))


# -- the rules ------------------------------------------------------------------------------

def held_rule(events: Sequence[Event], s0: float, s1: float) -> tuple[Findings, float]:
    """Seen from outside, the replicas must not answer a query while frozen (probe queries
    under a 1 s deadline). One that answered early means the freeze did not hold (thawed by
    something else): inconclusive, and the fault counts as healed then (the returned time)."""
    probes = [e for e in events if e.kind == "probe" and e.get("leg") == "query"
              and e.host.startswith("replica") and s0 <= e.t <= s1]
    answered = [e.t + float(e.get("took_s", 0.0)) for e in probes if e.get("ok")]
    early = min((t for t in answered if t > s0 + QUERY_DEADLINE_S), default=None)
    found = Findings(figures={"replica_queries_during": len(probes),
                              "replica_queries_answered": len(answered)})
    if len(probes) < 2:
        found.inconclusive.append(f"too few probe queries to the replicas during the freeze "
                                  f"({len(probes)}) to say they did not answer")
    elif early is not None and early < s1 - QUERY_DEADLINE_S:
        found.inconclusive.append(f"the freeze did not hold: a replica answered a probe query "
                                  f"{early - s0:.1f} s into it, {s1 - early:.1f} s before the "
                                  "thaw")
        return found, early
    return found, s1


def stall_rule(queue: Sequence[Event], p: Params, s0: float, s1: float) -> Findings:
    """Jobs must (nearly) stop finishing while the replicas are frozen: at most the jobs the
    workers held past their replica read when it began."""
    inside = [e for e in queue if s0 <= e.t <= s1]
    if len(inside) < 2:
        return inconclusive("too few queue samples during the freeze to see the stall")
    finished = int(inside[-1].get("done", 0)) - int(inside[0].get("done", 0))
    found = Findings(figures={"finished_during_freeze": finished})
    if finished > 2 * p.workers:
        found.inconclusive.append(f"{finished} jobs finished while the replicas were frozen: "
                                  "the workers did not stall (they did not depend on them)")
    return found


def backlog_rule(queue: Sequence[Event], state: SteadyState, p: Params, s0: float) -> Findings:
    """A backlog must form: at least `min_backlog` queued at the worst, above the band."""
    after = [e for e in queue if e.t >= s0]
    worst = max((int(e.get("depth", 0)) for e in after), default=0)
    oldest = max((float(e.get("oldest_age_s", 0.0)) for e in after), default=0.0)
    band = state.bands["depth"]
    found = Findings(figures={"backlog_max": worst, "oldest_max_s": round(oldest, 2),
                              "band_depth": str(band),
                              "band_oldest_s": str(state.bands["oldest_age_s"])})
    if worst < p.min_backlog or not worst > band.high:
        found.inconclusive.append(f"no backlog formed: at most {worst} jobs queued (min_backlog "
                                  f"{p.min_backlog}, steady band {band})")
    return found


def declaration_rule(events: Sequence[Event], queue: Sequence[Event], state: SteadyState,
                     p: Params, s0: float, s1: float, end: float) -> Findings:
    """The check's declaration against the queue's return to steady state (judged only once
    the freeze took: `given`)."""
    d = declaration(events, s0)
    found = Findings(figures={"polls": d.polls, "resolved_before_alarm": d.early_zero,
                              "first_alarm_s": _rel(d.first_alarm, s0),
                              "declared_after_heal_s": _rel(d.declared, s1),
                              "steady_after_heal_s": _rel(state.returned_t, s1)})
    if d.polls == 0:
        found.inconclusive.append("the resolution check never ran")
    elif d.first_alarm is None:
        found.failures.append(f"the resolution check never reported the incident: exit 0 on "
                              f"all {d.polls} polls from the fault's start (it cannot tell a "
                              "stalled queue from a healthy one)")
    elif d.declared is not None:
        found = merge(found, declared_rule(d.declared, queue, state, p, s0, s1, end))
    else:
        found = merge(found, undeclared_rule(state, p, s1, end))
    return found


def declared_rule(declared: float, queue: Sequence[Event], state: SteadyState, p: Params,
                  s0: float, s1: float, end: float) -> Findings:
    """Declared: not before steady state returned (one poll early is not before), and not
    more than `grace_s` after it."""
    returned = state.returned_t
    bands = f"depth {state.bands['depth']}, oldest {state.bands['oldest_age_s']} s"
    at = nearest(queue, declared)
    queued = int(at.get("depth", 0)) if at else 0
    age = float(at.get("oldest_age_s", 0.0)) if at else 0.0
    found = Findings(figures={"queued_at_declaration": queued,
                              "oldest_at_declaration_s": round(age, 2)})
    when = (f"{declared - s1:+.2f} s after the heal" if declared >= s1 else
            f"{declared - s0:.2f} s into the fault, while the replicas were still frozen")
    if returned is None or declared < returned - p.poll_s:
        later = (f"steady state ({bands}) returned only {returned - s1:+.2f} s after the "
                 f"heal, {returned - declared:.1f} s later" if returned is not None else
                 f"steady state ({bands}) had not returned when observation ended, "
                 f"{end - s1:.1f} s after the heal")
        found.failures.append(f"declared resolved {when} with {queued} jobs still queued, "
                              f"the oldest waiting {age:.1f} s: {later}")
        return found
    lag = declared - returned
    found.figures["declaration_lag_s"] = round(lag, 2)
    if lag > p.grace_s:
        found.failures.append(f"declared resolved only {lag:.1f} s after steady state "
                              f"returned ({returned - s1:+.2f} s after the heal; grace "
                              f"{p.grace_s:g} s)")
    return found


def undeclared_rule(state: SteadyState, p: Params, s1: float, end: float) -> Findings:
    """Nothing declared: a failure once steady state returned and the grace passed."""
    returned = state.returned_t
    bands = f"depth {state.bands['depth']}, oldest {state.bands['oldest_age_s']} s"
    if returned is None:
        return inconclusive(f"steady state ({bands}) never returned in {end - s1:.1f} s of "
                            "observation after the heal, and nothing was declared: nothing "
                            "to judge the check against")
    if end - returned > p.grace_s:
        return fail(f"never declared resolved, though steady state returned "
                    f"{returned - s1:+.2f} s after the heal and held {end - returned:.1f} s "
                    f"(grace {p.grace_s:g} s)")
    return inconclusive(f"observation ended {end - returned:.1f} s after steady state "
                        f"returned, inside the grace ({p.grace_s:g} s), with nothing declared")


def _rel(t: float | None, ref: float) -> float | None:
    return None if t is None else round(t - ref, 2)
