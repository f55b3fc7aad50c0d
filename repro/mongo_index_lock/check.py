"""The oracle: did the deploy storm stall the workload?

Model: a pure function of the history, composed of small named rules that each
add failures, inconclusive reasons and figures to one `Findings` (repro.harness.rules).
The storm is the fault window (`fault.start` / `fault.stop`, fault "deploy_storm"); the
judged window runs from the storm's start to the end of the history (during
and after). A *stall* is a stretch of time in which operations of one kind
(writes, reads) were waiting and none of that kind completed: the lock queue's
signature (a busy CPU slows operations down but they keep completing).

  fail          any operation failed, anywhere in the history (a failed write
                is a failure whatever else happened); the longest stall
                observed > max_stall_ms; the p99 latency observed > p99_ms; an
                instance's start-up failed or timed out; (MongoDB) read or
                write tickets ran out (in two samples in a row)
  inconclusive  the storm never started; not every instance was started; no
                instance ran; the workload did not run during the storm (no
                reads or no writes, or under half the operations its rate
                asks for); the background write transaction (when asked for)
                never held its locks during the storm; the harness was frozen
                across over 20 % of the operations, or the only stall over the
                limit is mostly a freeze
  pass          otherwise

Failure outranks inconclusive (`Verdict.judge`): a run with any failure is a
failure, the inconclusive reasons are listed beside it; no rule drops a
failure because something else was inconclusive.

Freezes. The harness measures from a machine it shares with the database: a
gap in its own clock ticks (`tick` events, no database involved) longer than
`freeze_s` means the harness itself was frozen (an overloaded machine), and
the time across it was not observed. That time is taken out of what was
measured, never the measurement: an operation's *observed* latency is its
latency minus the frozen time inside it, a stall's observed length is its
length minus the frozen time inside it; the percentiles and the stall limit
are judged on those. So a stall the harness watched for longer than the limit
fails even with a freeze inside it, and a "stall" that is only a freeze is
inconclusive, never a pass.

Lock waits (pg_locks) or tickets (serverStatus) sampled during the run are
figures and explain a stall in its reason; they never decide alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from repro.harness.checks import Verdict
from repro.harness.history import Event
from repro.harness.rules import Findings, band_of, fault_events, steady_state
from repro.mongo_index_lock.storm import FAULT

Span = tuple[float, float]


@dataclass(frozen=True)
class Params:
    max_stall_ms: float
    p99_ms: float
    instances: int
    batch_expected: bool = True
    stall_floor_ms: float = 100.0
    min_ops_fraction: float = 0.5
    freeze_s: float = 0.5
    max_frozen_fraction: float = 0.2


@dataclass(frozen=True)
class Stall:
    start: float
    end: float
    ops: int  # operations scheduled before the stall ended that were still waiting
    name: str = ""  # the kind of operation that stalled

    @property
    def length_s(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Observed:
    """The history as the rules see it: the storm window, the freezes, the operations."""

    events: list[Event]
    params: Params
    s0: float  # the storm's start
    s1: float  # the storm's end (the history's end if it never stopped)
    end: float  # the last completion in the history
    frozen: list[Span]
    ops: list[Event]

    @property
    def window(self) -> list[Event]:
        """Operations scheduled from the storm's start on (during and after it)."""
        return [e for e in self.ops if e.t >= self.s0]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def stalls(ops: Sequence[Event], floor_s: float) -> list[Stall]:
    """Stretches in which operations of one kind waited and none of that kind completed.

    Per operation name, operations are ordered by completion (scheduled time +
    latency). Between two successive completions c1 < c2, the work was stalled
    from max(c1, earliest scheduled time of an operation still outstanding) to
    c2 (before the first completion: from the first scheduled time). Stalls
    of at least `floor_s`, longest first. A slow CPU makes every
    operation slower but keeps them completing; a lock queue stops them.
    """
    found: list[Stall] = []
    for name in sorted({str(e.get("name")) for e in ops}):
        mine = sorted((_done(e), e.t) for e in ops if e.get("name") == name)
        # earliest scheduled time among operations completing at index i or later
        suffix_min = [0.0] * len(mine)
        low = math.inf
        for i in range(len(mine) - 1, -1, -1):
            low = min(low, mine[i][1])
            suffix_min[i] = low
        for i in range(len(mine)):
            start = max(mine[i - 1][0], suffix_min[i]) if i else suffix_min[0]
            end = mine[i][0]
            if end - start >= floor_s:
                waiting = sum(1 for c, t in mine[i:] if t < end)
                found.append(Stall(start, end, waiting, name))
    return sorted(found, key=lambda s: s.length_s, reverse=True)


def freezes(events: Sequence[Event], min_s: float) -> list[Span]:
    """Gaps of at least `min_s` between the harness's own clock ticks."""
    ticks = [e.t for e in events if e.kind == "tick"]
    return [(a, b) for a, b in itertools.pairwise(ticks) if b - a >= min_s]


def observed_s(start: float, end: float, frozen: Sequence[Span]) -> float:
    """The part of [start, end] the harness was not frozen for."""
    return (end - start) - _overlap(start, end, frozen)


def _overlap(a0: float, a1: float, spans: Sequence[Span]) -> float:
    return sum(max(0.0, min(a1, b1) - max(a0, b0)) for b0, b1 in spans)


def _latency(e: Event) -> float:
    return float(e.get("latency_s", 0.0))


def _done(e: Event) -> float:
    return e.t + _latency(e)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _windows(events: Sequence[Event], end: float) -> list[Span]:
    """[begin, commit] of each background transaction (open ones run to `end`)."""
    out, begin = [], None
    for e in events:
        if e.kind != "batch":
            continue
        if e.get("phase") == "begin":
            begin = e.t
        elif begin is not None:
            out.append((begin, e.t))
            begin = None
    if begin is not None:
        out.append((begin, end))
    return out


def check(events: list[Event], p: Params) -> Verdict:
    events = sorted(events, key=lambda e: e.t)
    found = Findings(figures={"instances_asked": p.instances})
    ops = [e for e in events if e.kind == "op"]
    frozen = freezes(events, p.freeze_s)
    starts = [e.t for e in fault_events(events, "start", FAULT)]
    if not starts:
        found.inconclusive.append("the deploy storm never started")
        failed_operations(ops, None, frozen, found)
        return found.verdict()
    end = max((_done(e) for e in events), default=0.0)
    stops = [e.t for e in fault_events(events, "stop", FAULT)]
    run = Observed(events, p, starts[0], stops[0] if stops else end, end, frozen, ops)
    found.figures["storm_s"] = round(run.s1 - run.s0, 2)
    for rule in (stall_rule, instance_rule, workload_rule, freeze_rule, latency_rule,
                 batch_rule, database_rule, recovery_figure):
        rule(run, found)
    failed_operations(ops, run.s0, frozen, found)
    return found.verdict()


# -- the rules ------------------------------------------------------------------------------

def failed_operations(ops: Sequence[Event], s0: float | None, frozen: Sequence[Span],
                      found: Findings) -> None:
    """Every failed operation fails the run: before, during or after the storm, across a
    freeze or not (where it was is said, never held in its favour)."""
    failed = [e for e in ops if not e.get("ok")]
    found.figures["ops_failed"] = len(failed)
    if not failed:
        return
    where = []
    before = sum(1 for e in failed if s0 is not None and e.t < s0)
    across = sum(1 for e in failed if _overlap(e.t, _done(e), frozen) > 0)
    if before:
        where.append(f"{before} before the storm")
    if across:
        where.append(f"{across} across a harness freeze")
    found.failures.append(f"{len(failed)} operations failed"
                          + (f" ({', '.join(where)})" if where else "")
                          + f"; first at t={failed[0].t:.1f} s: {failed[0].get('error', '')}")


def instance_rule(run: Observed, found: Findings) -> None:
    """Every asked instance must have run; any that failed or timed out fails the run."""
    p = run.params
    exits = [e for e in run.events if e.kind == "instance" and e.get("phase") == "exit"]
    started = [e for e in exits if e.get("started", True)]
    bad = [e for e in started if not e.get("ok")]
    found.figures.update(instances_started=len(started), instances_ok=len(started) - len(bad),
                         instances_failed=len(bad))
    if started:
        durations = [float(e.get("duration_s", 0)) for e in started]
        found.figures["instance_p50_s"] = round(percentile(durations, 50), 3)
        found.figures["instance_max_s"] = round(max(durations), 3)
    if not started:
        found.inconclusive.append(f"no service instance ran (0 of {p.instances} started)")
    elif len(started) < p.instances:
        found.inconclusive.append(f"only {len(started)} of {p.instances} service instances "
                                  "started")
    if bad:
        timed_out = sum(1 for e in bad if e.get("timed_out"))
        first = bad[0]
        found.failures.append(
            f"{len(bad)} of {len(started)} instances failed their start-up ({timed_out} timed "
            f"out); first: {first.host} exit {first.get('rc')}: "
            f"{str(first.get('output', '')).strip()[-160:]}")


def workload_rule(run: Observed, found: Findings) -> None:
    """Both kinds of operation must have run during the storm, at half their rate or more."""
    p = run.params
    during = [e for e in run.window if e.t <= run.s1]
    spec = next((e for e in run.events if e.kind == "workload" and e.get("event") == "start"),
                None)
    expected = float(spec.get("rate", 0)) * (run.s1 - run.s0) if spec else 0.0
    found.figures.update(ops_total=len(run.ops), ops_during_storm=len(during))
    missing = [n for n in ("write", "read") if not any(e.get("name") == n for e in during)]
    if not during or missing:
        found.inconclusive.append(f"the workload did not run during the storm (no "
                                  f"{' and no '.join(missing or ['operations'])} scheduled "
                                  "in it)")
    elif len(during) < p.min_ops_fraction * expected:
        found.inconclusive.append(f"the workload ran at under {p.min_ops_fraction:.0%} of its "
                                  f"rate during the storm ({len(during)} of {expected:.0f} "
                                  "operations)")


def freeze_rule(run: Observed, found: Findings) -> None:
    """Too many operations across a freeze: the figures may understate (inconclusive)."""
    window = run.window
    across = [e for e in window if _overlap(e.t, _done(e), run.frozen) > 0]
    longest = _ms(max((b - a for a, b in run.frozen), default=0.0))
    found.figures.update(harness_freezes=len(run.frozen), longest_freeze_ms=longest,
                         ops_across_freezes=len(across))
    if window and len(across) > run.params.max_frozen_fraction * len(window):
        found.inconclusive.append(
            f"the harness itself was frozen ({len(run.frozen)} times, longest {longest} ms) "
            f"across {len(across)} of {len(window)} operations: their latencies count only "
            "for the time it was not frozen")


def latency_rule(run: Observed, found: Findings) -> None:
    """p50 / p99 / max of the observed latencies (frozen time taken out); p99 > p99_ms fails."""
    window, before = run.window, [e for e in run.ops if e.t < run.s0]

    def seen(ops: Sequence[Event]) -> list[float]:
        return [observed_s(e.t, _done(e), run.frozen) for e in ops]

    latencies = seen(window)
    p99 = percentile(latencies, 99)
    baseline = _ms(percentile(seen(before), 99))
    found.figures.update(p50_ms=_ms(percentile(latencies, 50)), p99_ms=_ms(p99),
                         max_ms=_ms(max(latencies, default=0.0)), baseline_p99_ms=baseline)
    for name in sorted({str(e.get("name")) for e in run.ops}):
        mine = seen([e for e in window if e.get("name") == name])
        found.figures[f"{name}_p99_ms"] = _ms(percentile(mine, 99))
        found.figures[f"{name}_max_ms"] = _ms(max(mine, default=0.0))
    if p99 * 1000 > run.params.p99_ms:
        found.failures.append(f"p99 latency {_ms(p99)} ms > p99_ms {run.params.p99_ms:g} "
                              f"during and after the storm (baseline before it: {baseline} ms)")


def batch_rule(run: Observed, found: Findings) -> None:
    """The background write transaction must have held its locks during the storm."""
    batches = _windows(run.events, run.end)
    found.figures["batch_transactions"] = len(batches)
    if run.params.batch_expected and not any(b0 < run.s1 and b1 > run.s0 for b0, b1 in batches):
        found.inconclusive.append("the background write transaction never held its locks "
                                  "during the storm")


def database_rule(run: Observed, found: Findings) -> None:
    """Lock-wait figures (pg_locks); tickets (serverStatus) out two samples in a row fail."""
    samples = [e for e in run.events if e.kind == "db" and e.t >= run.s0]
    locks = [e for e in samples if e.get("source") == "pg_locks"]
    f = found.figures
    if locks:
        f["max_lock_waiters"] = max(int(e.get("waiting", 0)) for e in locks)
        f["max_create_index_waiters"] = max(int(e.get("waiting_share", 0)) for e in locks)
        f["longest_lock_wait_ms"] = _ms(max(float(e.get("longest_wait_s", 0)) for e in locks))
    tickets = [e for e in samples if e.get("source") == "serverStatus"]
    if not tickets:
        return
    f["min_read_tickets"] = min(int(e.get("read_available", 0)) for e in tickets)
    f["min_write_tickets"] = min(int(e.get("write_available", 0)) for e in tickets)
    acquire = [float(e.get("lock_acquire_s", 0)) for e in tickets]
    f["lock_acquire_ms"] = _ms(max(acquire) - min(acquire))
    # ran out = out in two samples in a row (a single sample can catch a burst)
    dry = [b for a, b in itertools.pairwise(tickets)
           if a.get("exhausted") and b.get("exhausted")]
    if dry:
        d = dry[0]
        found.failures.append(
            f"tickets exhausted in {len(dry)} samples from t={d.t:.1f} s (read available "
            f"{d.get('read_available')}/{d.get('read_total')}, write available "
            f"{d.get('write_available')}/{d.get('write_total')})")


def recovery_figure(run: Observed, found: Findings) -> None:
    """A figure, never a verdict: seconds from the storm's end until the lock queue
    (pg_locks waiters) and the writes' p99 (per 0.5 s of scheduled time) were back in
    their pre-storm bands and stayed there 1 s (the shared steady-state rule)."""
    locks = [(e.t, {"waiting": float(e.get("waiting", 0))}) for e in run.events
             if e.kind == "db" and e.get("source") == "pg_locks"]
    writes = [e for e in run.ops if e.get("name") == "write"]
    buckets: dict[int, list[float]] = {}
    for e in writes:
        buckets.setdefault(int(e.t // 0.5), []).append(observed_s(e.t, _done(e), run.frozen))
    p99s = [(k * 0.5, {"write_p99_s": percentile(v, 99)}) for k, v in sorted(buckets.items())]
    if not locks and not p99s:
        return
    bands = {"waiting": band_of([v["waiting"] for t, v in locks if t < run.s0], slack=1.0,
                                lower=False),
             "write_p99_s": band_of([v["write_p99_s"] for t, v in p99s if t + 0.5 <= run.s0],
                                    rel=1.0, slack=0.05, lower=False)}
    state = steady_state(sorted(locks + p99s, key=lambda s: s[0]), healed_t=run.s1,
                         hold_s=1.0, bands=bands, end_t=run.end)
    rec = state.recovery_s
    found.figures["queue_recovery_s"] = None if rec is None else round(rec, 2)


def stall_rule(run: Observed, found: Findings) -> None:
    """The longest stall the harness watched (frozen time taken out) > max_stall_ms fails;
    one over the limit only with its frozen time in it is inconclusive."""
    p = run.params
    limit_s = p.max_stall_ms / 1000
    found_stalls = [st for st in stalls(run.ops, p.stall_floor_ms / 1000) if st.end > run.s0]
    seen = sorted(((observed_s(st.start, st.end, run.frozen), st) for st in found_stalls),
                  key=lambda pair: pair[0], reverse=True)
    longest_s, longest = seen[0] if seen else (0.0, None)
    found.figures["longest_stall_ms"] = _ms(longest_s)
    if longest is not None:
        found.figures.update(stall_start_s=round(longest.start, 3),
                             stall_end_s=round(longest.end, 3), stall_kind=longest.name,
                             stall_frozen_ms=_ms(longest.length_s - longest_s))
    if longest is not None and longest_s > limit_s:
        found.failures.append(_describe_stall(longest, longest_s, run))
        return
    blurred = [st for st in found_stalls if st.length_s > limit_s]
    if blurred:
        st = blurred[0]
        found.inconclusive.append(
            f"the only stall over the limit ({_ms(st.length_s)} ms at t={st.start:.1f} s) is "
            f"the harness itself being frozen (only "
            f"{_ms(observed_s(st.start, st.end, run.frozen))} ms of it observed): the machine "
            "was overloaded")


def _describe_stall(stall: Stall, observed: float, run: Observed) -> str:
    inside = [e for e in run.window if e.t <= stall.end and _done(e) >= stall.start]
    worst: dict[str, float] = {}
    for e in inside:
        name = str(e.get("name"))
        worst[name] = max(worst.get(name, 0.0), _latency(e))
    who = ", ".join(f"{n}s waited up to {_ms(v)} ms" for n, v in sorted(worst.items()))
    waves = [e for e in run.events if e.kind == "instance" and e.get("phase") == "start"
             and e.t <= stall.start]
    queue = [e for e in run.events if e.kind == "db" and e.get("source") == "pg_locks"
             and stall.start <= e.t <= stall.end]
    frozen = stall.length_s - observed
    text = (f"{stall.name}s stalled for {_ms(observed)} ms > max_stall_ms "
            f"{run.params.max_stall_ms:g}: no {stall.name} completed from "
            f"t={stall.start:.1f} to {stall.end:.1f} s while {stall.ops} waited ({who})")
    if frozen > 0:
        text += f"; {_ms(frozen)} ms more of it the harness was frozen, not counted"
    if queue:
        text += (f"; up to {max(int(e.get('waiting', 0)) for e in queue)} sessions queued for "
                 f"locks on repro_jobs, {max(int(e.get('waiting_share', 0)) for e in queue)} "
                 f"of them CREATE INDEX (SHARE)")
    if waves:
        text += f"; deploy wave {waves[-1].get('wave')} had started at t={waves[-1].t:.1f} s"
    return text
