"""The oracle: did the caller keep serving while one of its replicas accepted but never answered?

Model: a pure function of the history, composed of named rules (repro.harness.rules).
The fault window is `fault.start` .. `fault.stop` of the fault on the frozen node
(fault "pause" for a freeze, "drop" for dropped traffic). The load's operations (`op`,
one per request at its due time, latency counted from then) are judged in three parts:
before the fault (requests answered before it began: the steady state), during it
(every request it could reach: due before it ended and still open when it began; the
fault takes hold while `inject` runs, a little before `fault.start` is written), and
after the thaw (the recovery, per second of due time).

  fail          the caller never became ready, or exited; it failed requests before any
                fault (min_success); during the fault: p99 of the observed latencies >
                max_p99_ms, or the fraction answered 200 < min_success; requests in flight
                at once > max_in_flight (a pile-up); /health unanswered for longer than
                max_health_gap_s; after the thaw: not back in the pre-fault band
                (success and p99 per second) within max_recovery_s, staying hold_s; the
                thawed node not serving the caller's reads again within max_back_s, by
                its own counters (below)
  inconclusive  the fault never started or missed (the freezer's own shortfall); seen
                from outside, the frozen node still answered queries in the window, or
                (freeze) no TCP connect to it succeeded (then it was not "accepting"), or
                (drop) one did; the other replica answered nothing either; the frozen node
                never answered again after the thaw; the load ran at under half its rate
                in the window; the harness itself was frozen across over 20 % of the
                window's requests; too little baseline to have a steady state; the
                node's own counters: not read before the fault or after the thaw, too
                little observation after the thaw to judge, or it served none of the
                caller's reads before the fault (a freeze of it tests nothing)
  pass          otherwise

Serving again, on the replica's word: its own count of scans of repro_jobs (served.py:
`series` events, panel "served", `reads` cumulative), read from the replica. Before the
fault it served the caller at `base` reads a second. After the thaw it serves again from
the first sample t at which the count rose and each of the next two windows of hold_s / 2
holds at least
min_share x base x (hold_s / 2) more reads; served_back_s = t - thaw. Two windows, not
one: reads queued in the frozen server run at the thaw for a caller that gave up on them
(a burst inside a second) fill one window at most; a caller that took the replica back
fills both. Not serving again by max_back_s (or never, by the end) is a failure.

Failure outranks inconclusive (`Verdict.judge`). Freezes of the harness (gaps in its own
`tick`s of 0.5 s or more) are taken out of every latency, never counted for or against
the caller (rules.freezes / observed_s).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from repro.harness.checks import Verdict
from repro.harness.history import Event
from repro.harness.rules import (
    Band,
    Findings,
    Sample,
    band_of,
    fault_events,
    fault_took_effect,
    freezes,
    gaps_over,
    observed_s,
    percentile,
    recovered_within,
    steady_before,
    steady_state,
)

Span = tuple[float, float]
QUERY_TIMEOUT_S = 1.0  # the node probe's deadline: a query sample started then is over by +1 s


@dataclass(frozen=True)
class Params:
    max_p99_ms: float
    min_success: float
    max_in_flight: int
    rate: float
    fault: str = "pause"          # the fault's name in the history ("pause" or "drop")
    node: str = "replica1"        # the node it targets
    kernel_acks: bool = True      # freeze: TCP connects to the node still succeed
    max_health_gap_s: float = 2.0
    max_recovery_s: float = 3.0
    hold_s: float = 3.0
    bucket_s: float = 1.0
    min_ops_fraction: float = 0.5
    freeze_s: float = 0.5
    max_frozen_fraction: float = 0.2
    min_baseline_buckets: int = 3
    max_back_s: float = 3.0       # the thawed node serves the caller's reads again by then
    min_share: float = 0.25       # ... at this fraction of its pre-fault rate, or more


@dataclass(frozen=True)
class Run:
    events: list[Event]
    p: Params
    s0: float
    s1: float
    end: float
    frozen: list[Span]
    ops: list[Event]

    def latency(self, e: Event) -> float:
        """The op's latency minus the time the harness itself was frozen inside it."""
        return observed_s(e.t, e.t + float(e.get("latency_s", 0.0)), self.frozen)

    def during(self) -> list[Event]:
        """Requests the fault could reach: due by its end, not answered before its start."""
        return [e for e in self.ops if e.t <= self.s1 and _done(e) >= self.s0]

    def before(self) -> list[Event]:
        """Requests answered (or given up) before the fault began."""
        return [e for e in self.ops if _done(e) < self.s0]


def _done(e: Event) -> float:
    return e.t + float(e.get("latency_s", 0.0))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def check(events: list[Event], p: Params) -> Verdict:
    events = sorted(events, key=lambda e: e.t)
    found = Findings()
    caller_rule(events, found)
    starts = fault_events(events, "start", p.fault, p.node)
    if not starts:
        found.inconclusive.append(f"{p.node} was never faulted ({p.fault})")
        return found.verdict()
    stops = fault_events(events, "stop", p.fault, p.node)
    end = max((e.t + float(e.get("latency_s", 0.0)) for e in events), default=0.0)
    s1 = stops[0].t if stops else end
    run = Run(events, p, starts[0].t, s1, end, freezes(events, p.freeze_s),
              [e for e in events if e.kind == "op"])
    found.figures["fault_s"] = round(run.s1 - run.s0, 2)
    shortfall = fault_took_effect(events, p.fault, host=p.node, never="",
                                  shortfall=f"the {p.fault} of {p.node} did not take")
    found.inconclusive += shortfall.inconclusive
    for rule in (during_rule, baseline_rule, in_flight_rule, health_rule, recovery_rule,
                 served_again_rule, took_effect_rule, workload_rule, freeze_rule):
        rule(run, found)
    return found.verdict()


# -- the rules ------------------------------------------------------------------------------

def caller_rule(events: Sequence[Event], found: Findings) -> None:
    """The caller must have become ready and stayed up."""
    ready = [e for e in events if e.kind == "caller" and e.get("phase") == "ready"]
    if ready and not ready[0].get("ok"):
        found.failures.append(f"the caller never became ready: {ready[0].get('error', '')}")
    for e in events:
        if e.kind == "caller" and e.get("phase") == "exit":
            found.failures.append(f"the caller exited (code {e.get('rc')}) at {e.t:.2f} s: "
                                  f"{str(e.get('output', '')).strip()[-200:]}")


def _success(ops: Sequence[Event]) -> float:
    return sum(1 for e in ops if e.get("ok")) / len(ops) if ops else 1.0


def _worst(ops: Sequence[Event]) -> str:
    failed = [e for e in ops if not e.get("ok")]
    if not failed:
        return ""
    kinds: dict[str, int] = {}
    for e in failed:
        key = str(e.get("error", f"HTTP {e.get('status')}"))[:60]
        kinds[key] = kinds.get(key, 0) + 1
    top = sorted(kinds.items(), key=lambda kv: -kv[1])[:2]
    return "; ".join(f"{n} x {k}" for k, n in top)


def during_rule(run: Run, found: Findings) -> None:
    """p99 and success of the requests due during the fault."""
    p, ops = run.p, run.during()
    lat = [run.latency(e) for e in ops]
    p99, success = percentile(lat, 99), _success(ops)
    found.figures.update(requests_during=len(ops), p50_ms=_ms(percentile(lat, 50)),
                         p99_ms=_ms(p99), max_ms=_ms(max(lat, default=0.0)),
                         success=round(success, 4),
                         failed_during=sum(1 for e in ops if not e.get("ok")))
    if not ops:
        return
    state = "accepted but did not answer" if p.kernel_acks else "had its traffic dropped"
    if p99 * 1000 > p.max_p99_ms:
        found.failures.append(f"p99 latency {_ms(p99)} ms > max_p99_ms {p.max_p99_ms:g} while "
                              f"{p.node} {state} ({len(ops)} requests, slowest "
                              f"{_ms(max(lat))} ms)")
    if success < p.min_success:
        found.failures.append(f"only {success:.1%} of {len(ops)} requests answered during the "
                              f"fault (min_success {p.min_success:.1%}): {_worst(ops)}")


def baseline_rule(run: Run, found: Findings) -> None:
    """The caller must have served before any fault."""
    ops = run.before()
    lat = [run.latency(e) for e in ops]
    success = _success(ops)
    found.figures.update(baseline_requests=len(ops), baseline_p99_ms=_ms(percentile(lat, 99)),
                         baseline_success=round(success, 4))
    if ops and success < run.p.min_success:
        found.failures.append(f"the caller failed {sum(1 for e in ops if not e.get('ok'))} of "
                              f"{len(ops)} requests before any fault: {_worst(ops)}")


def in_flight(ops: Sequence[Event], latency: Callable[[Event], float] | None = None
              ) -> tuple[int, float]:
    """Most requests outstanding at once, and when (each open for its `latency`: by default
    as recorded; the checker passes the observed one, harness freezes taken out)."""
    took = latency or (lambda e: float(e.get("latency_s", 0.0)))
    edges = sorted([(e.t, 1) for e in ops] + [(e.t + took(e), -1) for e in ops])
    most, at, now = 0, 0.0, 0
    for t, step in edges:
        now += step
        if now > most:
            most, at = now, t
    return most, at


def in_flight_rule(run: Run, found: Findings) -> None:
    most, at = in_flight(run.ops, run.latency)
    found.figures.update(max_in_flight=most, in_flight_limit=run.p.max_in_flight)
    if most > run.p.max_in_flight:
        found.failures.append(f"requests piled up: {most} in flight at once at {at:.2f} s "
                              f"({at - run.s0:+.2f} s after the fault began; limit "
                              f"{run.p.max_in_flight})")


def health_rule(run: Run, found: Findings) -> None:
    health = [e for e in run.events if e.kind == "probe" and e.get("leg") == "health"]
    gaps = gaps_over(health, run.p.max_health_gap_s, end=run.end, say=lambda g: (
        f"/health did not answer for {g.length:.2f} s (limit {run.p.max_health_gap_s:g} s) "
        f"from {g.start - run.s0:+.2f} s after the fault began"
        + (", still not at the end" if g.ongoing else "")))
    from repro.harness.checks import liveness_gaps

    longest = max((g.length for g in liveness_gaps(health, end=run.end)), default=0.0)
    found.figures.update(health_samples=len(health), health_longest_gap_s=round(longest, 2))
    found.failures += gaps.failures


def buckets(run: Run, ops: Sequence[Event]) -> list[Sample]:
    """(bucket start, {success, p99_s}) per `bucket_s` of due time."""
    if not ops:
        return []
    t0 = min(e.t for e in ops)
    by: dict[int, list[Event]] = {}
    for e in ops:
        by.setdefault(int((e.t - t0) // run.p.bucket_s), []).append(e)
    return [(t0 + k * run.p.bucket_s,
             {"success": _success(v), "p99_s": percentile([run.latency(e) for e in v], 99)})
            for k, v in sorted(by.items())]


def recovery_rule(run: Run, found: Findings) -> None:
    """Back within the pre-fault band after the thaw (the shared steady-state rule)."""
    p = run.p
    samples = buckets(run, run.ops)
    base = [v for t, v in samples if t + p.bucket_s <= run.s0]
    bands = {
        "success": band_of([v["success"] for v in base], slack=0.02, upper=False,
                           at_least=Band(p.min_success)),
        "p99_s": band_of([v["p99_s"] for v in base], rel=1.0, slack=0.05, lower=False,
                         at_least=Band(high=p.max_p99_ms / 1000)),
    }
    before = steady_before([(t, v) for t, v in samples if t + p.bucket_s <= run.s0],
                           fault_t=run.s0, min_samples=p.min_baseline_buckets,
                           what="the caller's requests")
    found.inconclusive += before.inconclusive
    state = steady_state(samples, healed_t=run.s1, hold_s=p.hold_s, bands=bands,
                         baseline_samples=len(base), end_t=run.end)
    found.figures.update(state.figures())
    found.failures += recovered_within(state, p.max_recovery_s,
                                       what="the caller's success and p99").failures


def took_effect_rule(run: Run, found: Findings) -> None:
    """From outside: the node did not answer queries in the window; (freeze) a TCP connect
    to it still succeeded, (drop) none did; the other replica answered; it came back."""
    p = run.p
    probes = [e for e in run.events if e.kind == "probe" and e.get("leg") in ("tcp", "query")]
    inside = [e for e in probes if run.s0 <= e.t <= run.s1 - QUERY_TIMEOUT_S]
    mine = [e for e in inside if e.host == p.node]
    query = [e for e in mine if e.get("leg") == "query"]
    tcp = [e for e in mine if e.get("leg") == "tcp"]
    others = [e for e in inside if e.host != p.node and e.get("leg") == "query"
              and e.host.startswith("replica")]
    answered = sum(1 for e in query if e.get("ok"))
    connected = sum(1 for e in tcp if e.get("ok"))
    found.figures.update(node_queries=len(query), node_queries_answered=answered,
                         node_connects=len(tcp), node_connects_ok=connected)
    if len(query) < 2:
        found.inconclusive.append(f"too few probe queries to {p.node} during the fault "
                                  f"({len(query)}) to say it did not answer")
    elif answered:
        found.inconclusive.append(f"{p.node} still answered {answered} of {len(query)} probe "
                                  "queries during the fault: it was not unresponsive")
    if p.kernel_acks and tcp and not connected:
        found.inconclusive.append(f"no TCP connect to {p.node} succeeded during the freeze "
                                  "(its kernel should still accept): not the incident's fault")
    if not p.kernel_acks and connected:
        found.inconclusive.append(f"{connected} TCP connects to {p.node} succeeded while its "
                                  "traffic was meant to be dropped")
    if others and not any(e.get("ok") for e in others):
        found.inconclusive.append("the other replicas did not answer during the fault either: "
                                  "there was nothing to fail over to")
    back = [e for e in probes if e.host == p.node and e.get("leg") == "query" and e.t > run.s1]
    if back and not any(e.get("ok") for e in back):
        found.inconclusive.append(f"{p.node} never answered again after the fault healed")


def workload_rule(run: Run, found: Findings) -> None:
    expected = run.p.rate * (run.s1 - run.s0)
    got = len(run.during())
    if got < run.p.min_ops_fraction * expected:
        found.inconclusive.append(f"the load ran at under {run.p.min_ops_fraction:.0%} of its "
                                  f"rate during the fault ({got} of {expected:.0f} requests)")


def freeze_rule(run: Run, found: Findings) -> None:
    ops = run.during()
    across = [e for e in ops if float(e.get("latency_s", 0.0)) - run.latency(e) > 1e-6]
    longest = max((b - a for a, b in run.frozen), default=0.0)
    found.figures.update(harness_freezes=len(run.frozen), longest_freeze_ms=_ms(longest))
    if ops and len(across) > run.p.max_frozen_fraction * len(ops):
        found.inconclusive.append(f"the harness itself was frozen ({len(run.frozen)} times, "
                                  f"longest {_ms(longest)} ms) across {len(across)} of "
                                  f"{len(ops)} requests during the fault")


# -- the replica's own word: serving the caller again after the thaw --------------------------

def served(run: Run) -> list[tuple[float, int]]:
    """(t, cumulative reads of repro_jobs) the frozen node reported about itself."""
    return [(e.t, int(e.get("reads"))) for e in run.events
            if e.kind == "series" and e.get("panel") == "served" and e.host == run.p.node
            and e.get("reads") is not None]


def _count_at(samples: Sequence[tuple[float, int]], t: float) -> int | None:
    """The count of the last sample at or before `t` (None before the first)."""
    last = None
    for ts, n in samples:
        if ts > t:
            break
        last = n
    return last


def base_rate(samples: Sequence[tuple[float, int]], s0: float) -> tuple[float, float]:
    """Reads a second the node served before the fault, and over how many seconds."""
    before = [(t, n) for t, n in samples if t <= s0]
    if len(before) < 2:
        return 0.0, 0.0
    span = before[-1][0] - before[0][0]
    return ((before[-1][1] - before[0][1]) / span if span > 0 else 0.0), span


def served_back_t(samples: Sequence[tuple[float, int]], s1: float, window_s: float,
                  need: float) -> float | None:
    """The first sample after `s1` at which the count rose and from which each of the next
    two `window_s` windows holds at least `need` more reads (by the samples: a count is
    known only when read)."""
    for (_, prev), (t, n) in itertools.pairwise(samples):
        if t < s1 or n <= prev:
            continue
        if samples[-1][0] < t + 2 * window_s:
            return None
        mid, end = _count_at(samples, t + window_s), _count_at(samples, t + 2 * window_s)
        if mid is not None and end is not None and mid - n >= need and end - mid >= need:
            return t
    return None


def _answered_after(run: Run) -> bool:
    """The node probe's query leg got an answer from the node after the thaw."""
    return any(e.kind == "probe" and e.host == run.p.node and e.get("leg") == "query"
               and e.t > run.s1 and e.get("ok") for e in run.events)


def served_again_rule(run: Run, found: Findings) -> None:
    """The thawed node must serve the caller's reads again, by its own counters."""
    p, samples = run.p, served(run)
    rate, span = base_rate(samples, run.s0)
    window = p.hold_s / 2
    need = p.min_share * rate * window
    after = [(t, n) for t, n in samples if t >= run.s1]
    at_thaw = _count_at(samples, run.s1 - 1e-9)
    first_s = [n for t, n in after if t <= run.s1 + 1.0]  # read in the first second
    found.figures.update(
        node_base_reads_per_s=round(rate, 1),
        node_reads_after_thaw=(after[-1][1] - after[0][1]) if after else None,
        node_reads_first_s=(first_s[-1] - at_thaw
                            if at_thaw is not None and first_s else None),
        served_back_s=None)
    if span < 2 * window:
        found.inconclusive.append(f"{p.node}'s own counters were read for {span:.1f} s before "
                                  "the fault: no rate of reads to return to")
        return
    if rate * window < 1:
        found.inconclusive.append(f"{p.node} served none of the caller's reads before the "
                                  f"fault ({rate:.2f} a second by its own counters): its "
                                  f"{p.fault} tested nothing")
        return
    if not _answered_after(run):
        return  # took_effect_rule: it never answered again (inconclusive), nothing to judge
    if not after:
        found.inconclusive.append(f"{p.node}'s own counters could not be read after the thaw")
        return
    if run.end - run.s1 < p.max_back_s + 2 * window:
        found.inconclusive.append(f"observation ended {run.end - run.s1:.1f} s after the thaw: "
                                  f"too soon to see {p.node} serving again (needs "
                                  f"{p.max_back_s + 2 * window:g} s)")
        return
    back = served_back_t(samples, run.s1, window, need)
    found.figures["served_back_s"] = None if back is None else round(back - run.s1, 2)
    if back is not None and back - run.s1 <= p.max_back_s:
        return
    got = after[-1][1] - after[0][1]
    found.failures.append(
        f"{p.node} did not serve the caller's reads again within {p.max_back_s:g} s of the "
        f"thaw, by its own counters: {got} reads in the {after[-1][0] - run.s1:.1f} s after "
        f"it (at least {need:.0f} in each of two {window:g} s windows expected: "
        f"{p.min_share:.0%} of the {rate:.1f} a second it served before the fault)"
        + ("" if back is None else f"; it did from {back - run.s1:.2f} s"))
