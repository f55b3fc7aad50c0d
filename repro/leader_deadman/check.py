"""The leader_deadman oracle: who decided when, against the run's windows.

Input: the history's `mark` events name "decision" (one per PUT under
/repro/decisions/, seen through etcd's watch, host = the server that wrote it), its
`phase` events (control, fault, after, end), the fault's `fault.start` / `fault.stop`
and the TCP probes of the servers. It never reads the agent.

Fail when
- nobody decided before the fault (no leader was ever elected);
- two servers decided within one decision interval of each other (split brain),
  anywhere in the run;
- the fault-free control window saw more than one decider (the switch fired on a
  healthy leader: the next incident's failure);
- after the leader was taken away, no other server decided within `max_takeover_s`
  ("cluster static", with how long no decision was made);
- nobody decided after healing;
- after healing more than one server decided.
Inconclusive when the fault did not take (the killed host still answered, the pause or
partition missed), when the leader still decided during the fault, when no other
server was alive to take over, or when the observer itself was starved.

Fault first, then judgement (`rules.given`): "cluster static" and "nobody decided after
healing" can fire *because* the fault did not take (a leader that was never gone keeps
deciding and nobody else needs to; with nobody alive, nobody can), so they are judged only
once the fault is shown to have taken; a run where it did not is inconclusive for that
reason alone. Split brain, the control window and two deciders after healing are failures
whatever the fault did.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from repro.harness.checks import Verdict
from repro.harness.history import Event, of_kind
from repro.harness.rules import (
    Findings,
    compose,
    fail,
    fault_events,
    fault_took_effect,
    given,
    inconclusive,
    observer_starved,
)

PAST = {"kill": "killed", "pause": "paused", "partition": "cut off"}
STARVED_S = 3.0  # the observer's pulse (TCP probes every 0.5 s) silent this long


@dataclass(frozen=True)
class Params:
    servers: tuple[str, ...]
    interval_s: float
    max_takeover_s: float
    fault: str   # kill | pause | partition: the fault the run injected


@dataclass(frozen=True)
class Windows:
    control: float
    fault: float | None
    healed: float | None
    end: float


def decisions(events: list[Event]) -> list[Event]:
    return [e for e in events if e.kind == "mark" and e.get("name") == "decision"]


def _phase(events: list[Event], name: str) -> float | None:
    return next((e.t for e in of_kind(events, "phase") if e.get("name") == name), None)


def _windows(events: list[Event], fault: str) -> Windows | None:
    control = _phase(events, "control")
    if control is None:
        return None
    starts = fault_events(events, "start", fault)
    stops = fault_events(events, "stop", fault)
    end = _phase(events, "end") or max(e.t for e in events)
    return Windows(control, starts[0].t if starts else None, stops[0].t if stops else None,
                   end)


def check(events: list[Event], p: Params) -> Verdict:
    ds = decisions(events)
    w = _windows(events, p.fault)
    if not ds or w is None:
        return compose(fail(f"no server decided: no leader was elected among "
                            f"{', '.join(p.servers)}"))
    control = [d for d in ds if w.control <= d.t < (w.fault or w.end)]
    leader = control[-1].host if control else ds[-1].host
    figures = Findings(figures={"leader": leader, "decisions": len(ds),
                                "deciders_control": len({d.host for d in control})})
    verdict_parts = [figures, split_brain(ds, p.interval_s), control_window(control)]
    if w.fault is None:
        return compose(*verdict_parts, inconclusive("the leader was never taken away"))
    took = _fault_took(events, ds, leader, w, p)
    return compose(*verdict_parts,
                   given(took, takeover(ds, leader, w, p), decided_after_healing(ds, w)),
                   one_decider_after_healing(ds, w),
                   observer_starved(of_kind(events, "probe"), STARVED_S,
                                    what="probe of the servers"))


def split_brain(ds: list[Event], interval_s: float) -> Findings:
    """Two different servers deciding within one interval of each other."""
    pairs = [(a, b) for a, b in itertools.pairwise(ds)
             if a.host != b.host and b.t - a.t < interval_s]
    found = Findings(figures={"split_brain_pairs": len(pairs)})
    if pairs:
        a, b = pairs[0]
        found.failures.append(
            f"split brain: {a.host} and {b.host} both decided within {b.t - a.t:.2f} s "
            f"(one interval is {interval_s:g} s) at {b.t:.2f} s"
            + (f", and {len(pairs) - 1} more such pairs" if len(pairs) > 1 else ""))
    return found


def control_window(control: list[Event]) -> Findings:
    changes = [(a, b) for a, b in itertools.pairwise(control) if a.host != b.host]
    if not control:
        return fail("nobody decided during the fault-free control window")
    if changes:
        a, b = changes[0]
        return fail(f"leadership changed with no fault: {a.host} -> {b.host} at {b.t:.2f} s "
                    "of the control window (a switch that fires on a healthy leader)")
    return Findings()


def takeover(ds: list[Event], leader: str, w: Windows, p: Params) -> Findings:
    """Another server must decide within `max_takeover_s` of the fault (judged only once
    the fault took: `given`); `static_s`, `takeover_s`, `new_leader` measured either way."""
    assert w.fault is not None
    last_before = max((d.t for d in ds if d.t < w.fault), default=w.fault)
    first_other = next((d for d in ds if d.t >= w.fault and d.host != leader), None)
    until = first_other.t if first_other else w.end
    static_s = round(until - last_before, 2)
    found = Findings(figures={"static_s": static_s, "takeover_s": round(
        first_other.t - w.fault, 2) if first_other else None,
        "new_leader": first_other.host if first_other else None})
    late = first_other is None or first_other.t - w.fault > p.max_takeover_s
    if late:
        how = (f"{first_other.host} decided only {first_other.t - w.fault:.1f} s after"
               if first_other else f"nobody else decided in the {w.end - w.fault:.1f} s after")
        found.failures.append(
            f"cluster static for {static_s:.1f} s: {how} {leader} was {PAST[p.fault]} "
            f"(limit {p.max_takeover_s:g} s)")
    return found


def _after(ds: list[Event], w: Windows) -> list[Event]:
    assert w.healed is not None
    return [d for d in ds if d.t >= w.healed]


def decided_after_healing(ds: list[Event], w: Windows) -> Findings:
    """Somebody must decide after healing (judged only once the fault took: `given`)."""
    if w.healed is None or _after(ds, w):
        return Findings()
    return fail(f"nobody decided in the {w.end - w.healed:.1f} s after healing")


def one_decider_after_healing(ds: list[Event], w: Windows) -> Findings:
    """At most one server decides after healing, whatever the fault did: a leader that
    comes back from a pause or a partition and decides beside the new one is split brain."""
    if w.healed is None:
        return Findings()
    deciders = sorted({d.host for d in _after(ds, w)})
    found = Findings(figures={"deciders_after": len(deciders)})
    if len(deciders) > 1:
        found.failures.append(f"{len(deciders)} servers decided after healing "
                              f"({', '.join(deciders)}): not one leader")
    return found


def _fault_took(events: list[Event], ds: list[Event], leader: str, w: Windows,
                p: Params) -> Findings:
    """Inconclusive unless the fault took: it was applied with no shortfall, the leader
    stopped deciding while under it, and some other server answered probes during it."""
    took = fault_took_effect(events, p.fault, never=f"{leader} was never {PAST[p.fault]}",
                             shortfall="the fault did not take")
    if took.inconclusive:
        return took
    assert w.fault is not None
    grace = w.fault + p.interval_s  # a put in flight when the fault landed
    still = [d for d in ds if d.host == leader and grace < d.t < (w.healed or w.end)]
    if still:
        return inconclusive(f"{leader} still decided {len(still)} times while {PAST[p.fault]}: "
                            "the fault did not take")
    others = {e.host for e in of_kind(events, "probe")
              if e.host != leader and e.get("ok") and w.fault <= e.t <= (w.healed or w.end)}
    if not others:
        return inconclusive(f"no server but {leader} answered during the fault: nobody "
                            "alive could have taken over")
    return Findings()
