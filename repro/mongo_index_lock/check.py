"""The oracle: did the deploy storm stall the workload?

Model: a pure function of the history. The storm is the fault window
(`fault.start` / `fault.stop`, fault "deploy_storm"); the judged window runs
from the storm's start to the end of the history (during and after). A
*stall* is a stretch of time in which operations of one kind (writes, reads)
were waiting and none of that kind completed: the lock queue's signature (a
busy CPU slows operations down but they keep completing). The longest stall
(at least `stall_floor_ms` to count) and the p99 latency (from each
operation's scheduled time) of every operation in the window are the verdict's figures.

  inconclusive  the storm never started; not every instance was started; no
                instance ran; the workload did not run during the storm (no
                reads or no writes, or under half the operations its rate
                asks for); the background write transaction (when asked for)
                never held its locks during the storm
  fail          longest stall > max_stall_ms; p99 > p99_ms; any operation
                failed; an instance's start-up failed or timed out; (MongoDB)
                read or write tickets ran out (in two samples in a row)
  pass          otherwise

The harness measures from a machine it shares with the database: a gap in
its own clock ticks (`tick` events, no database involved) longer than
`freeze_s` means the harness itself was frozen (an overloaded machine), and
latencies across it measure that, not the database. Operations overlapping a
freeze are left out of the percentiles, and a stall mostly inside a freeze is
not held against the configuration; if that leaves too little (over 20 % of
the operations out, or the only stall over the limit discounted), the run is
inconclusive, never a pass.

Lock waits (pg_locks) or tickets (serverStatus) sampled during the run are
figures and explain a stall in its reason; they never decide alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from repro.checks import Verdict
from repro.history import Event
from repro.mongo_index_lock.storm import FAULT


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
        mine = sorted((e.t + float(e.get("latency_s", 0.0)), e.t) for e in ops
                      if e.get("name") == name)
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


def freezes(events: Sequence[Event], min_s: float) -> list[tuple[float, float]]:
    """Gaps of at least `min_s` between the harness's own clock ticks."""
    ticks = [e.t for e in events if e.kind == "tick"]
    return [(a, b) for a, b in itertools.pairwise(ticks) if b - a >= min_s]


def _overlap(a0: float, a1: float, spans: Sequence[tuple[float, float]]) -> float:
    return sum(max(0.0, min(a1, b1) - max(a0, b0)) for b0, b1 in spans)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _windows(events: Sequence[Event], end: float) -> list[tuple[float, float]]:
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
    failures: list[str] = []
    inconclusive: list[str] = []
    figures: dict[str, object] = {"instances_asked": p.instances}
    end = max((e.t + float(e.get("latency_s", 0.0)) for e in events), default=0.0)

    starts = [e for e in events if e.kind == "fault.start" and e.get("fault") == FAULT]
    if not starts:
        return Verdict.judge([], ["the deploy storm never started"], figures)
    s0 = starts[0].t
    stops = [e for e in events if e.kind == "fault.stop" and e.get("fault") == FAULT]
    s1 = stops[0].t if stops else end
    figures["storm_s"] = round(s1 - s0, 2)

    # -- the storm's instances ----------------------------------------------------------
    exits = [e for e in events if e.kind == "instance" and e.get("phase") == "exit"]
    started = [e for e in exits if e.get("started", True)]
    bad = [e for e in started if not e.get("ok")]
    figures.update(instances_started=len(started), instances_ok=len(started) - len(bad),
                   instances_failed=len(bad))
    if started:
        figures["instance_p50_s"] = round(percentile(
            [float(e.get("duration_s", 0)) for e in started], 50), 3)
        figures["instance_max_s"] = round(max(float(e.get("duration_s", 0))
                                              for e in started), 3)
    if not started:
        inconclusive.append(f"no service instance ran (0 of {p.instances} started)")
    elif len(started) < p.instances:
        inconclusive.append(f"only {len(started)} of {p.instances} service instances started")
    if bad:
        timed_out = sum(1 for e in bad if e.get("timed_out"))
        first = bad[0]
        failures.append(f"{len(bad)} of {len(started)} instances failed their start-up "
                        f"({timed_out} timed out); first: {first.host} exit {first.get('rc')}: "
                        f"{str(first.get('output', '')).strip()[-160:]}")

    # -- the workload ---------------------------------------------------------------------
    ops = [e for e in events if e.kind == "op"]
    before = [e for e in ops if e.t < s0]
    window = [e for e in ops if e.t >= s0]
    during = [e for e in window if e.t <= s1]
    names = sorted({str(e.get("name")) for e in ops})
    spec = next((e for e in events if e.kind == "workload" and e.get("event") == "start"), None)
    expected = float(spec.get("rate", 0)) * (s1 - s0) if spec else 0.0
    figures.update(ops_total=len(ops), ops_during_storm=len(during))
    missing = [n for n in ("write", "read") if not any(e.get("name") == n for e in during)]
    if not during or missing:
        inconclusive.append(f"the workload did not run during the storm "
                            f"(no {' and no '.join(missing or ['operations'])} scheduled in it)")
    elif len(during) < p.min_ops_fraction * expected:
        inconclusive.append(f"the workload ran at under {p.min_ops_fraction:.0%} of its rate "
                            f"during the storm ({len(during)} of {expected:.0f} operations)")

    frozen = freezes(events, p.freeze_s)
    figures["harness_freezes"] = len(frozen)
    figures["longest_freeze_ms"] = _ms(max((b - a for a, b in frozen), default=0.0))
    clean = [e for e in window
             if _overlap(e.t, e.t + float(e.get("latency_s", 0.0)), frozen) == 0]
    figures["ops_left_out_frozen"] = len(window) - len(clean)
    if window and len(window) - len(clean) > p.max_frozen_fraction * len(window):
        inconclusive.append(f"the harness itself was frozen ({len(frozen)} times, longest "
                            f"{figures['longest_freeze_ms']} ms): {len(window) - len(clean)} of "
                            f"{len(window)} operations measured the machine's overload")
    window = clean
    latencies = [float(e.get("latency_s", 0.0)) for e in window]
    p99 = percentile(latencies, 99)
    figures.update(p50_ms=_ms(percentile(latencies, 50)), p99_ms=_ms(p99),
                   max_ms=_ms(max(latencies, default=0.0)),
                   baseline_p99_ms=_ms(percentile([float(e.get("latency_s", 0)) for e in before],
                                                  99)))
    for name in names:
        mine = [float(e.get("latency_s", 0.0)) for e in window if e.get("name") == name]
        figures[f"{name}_p99_ms"] = _ms(percentile(mine, 99))
        figures[f"{name}_max_ms"] = _ms(max(mine, default=0.0))
    failed = [e for e in window if not e.get("ok")]
    figures["ops_failed"] = len(failed)
    if failed:
        failures.append(f"{len(failed)} operations failed; first at t={failed[0].t:.1f} s: "
                        f"{failed[0].get('error', '')}")

    # -- the background transaction ---------------------------------------------------------
    batches = _windows(events, end)
    figures["batch_transactions"] = len(batches)
    if p.batch_expected and not any(b0 < s1 and b1 > s0 for b0, b1 in batches):
        inconclusive.append("the background write transaction never held its locks during "
                            "the storm")

    # -- database samples ----------------------------------------------------------------------
    samples = [e for e in events if e.kind == "db" and e.t >= s0]
    locks = [e for e in samples if e.get("source") == "pg_locks"]
    if locks:
        figures["max_lock_waiters"] = max(int(e.get("waiting", 0)) for e in locks)
        figures["max_create_index_waiters"] = max(int(e.get("waiting_share", 0)) for e in locks)
        figures["longest_lock_wait_ms"] = _ms(max(float(e.get("longest_wait_s", 0))
                                                  for e in locks))
    tickets = [e for e in samples if e.get("source") == "serverStatus"]
    if tickets:
        figures["min_read_tickets"] = min(int(e.get("read_available", 0)) for e in tickets)
        figures["min_write_tickets"] = min(int(e.get("write_available", 0)) for e in tickets)
        acquire = [float(e.get("lock_acquire_s", 0)) for e in tickets]
        figures["lock_acquire_ms"] = _ms(max(acquire) - min(acquire))
        # ran out = out in two samples in a row (a single sample can catch a burst)
        dry = [b for a, b in itertools.pairwise(tickets)
               if a.get("exhausted") and b.get("exhausted")]
        if dry:
            failures.append(f"tickets exhausted in {len(dry)} samples from t={dry[0].t:.1f} s "
                            f"(read available {dry[0].get('read_available')}/"
                            f"{dry[0].get('read_total')}, write available "
                            f"{dry[0].get('write_available')}/{dry[0].get('write_total')})")

    # -- stalls ----------------------------------------------------------------------------------
    found = [st for st in stalls(ops, p.stall_floor_ms / 1000) if st.end > s0]
    real = [st for st in found if _overlap(st.start, st.end, frozen) < 0.5 * st.length_s]
    blurred = [st for st in found if st not in real]
    longest = real[0] if real else None
    limit_s = p.max_stall_ms / 1000
    if blurred and blurred[0].length_s > limit_s and not (longest and longest.length_s > limit_s):
        inconclusive.append(f"the only stall over the limit ({_ms(blurred[0].length_s)} ms at "
                            f"t={blurred[0].start:.1f} s) is the harness itself being frozen: "
                            "the machine was overloaded")
    figures["longest_stall_ms"] = _ms(longest.length_s) if longest else 0.0
    if longest:
        figures.update(stall_start_s=round(longest.start, 3), stall_end_s=round(longest.end, 3),
                       stall_kind=longest.name)
    if longest and longest.length_s * 1000 > p.max_stall_ms:
        failures.insert(0, _describe_stall(longest, window, events, locks, p))
    if p99 * 1000 > p.p99_ms:
        failures.append(f"p99 latency {_ms(p99)} ms > p99_ms {p.p99_ms:g} during and after "
                        f"the storm (baseline before it: {figures['baseline_p99_ms']} ms)")
    return Verdict.judge(failures, inconclusive, figures)


def _describe_stall(stall: Stall, window: Sequence[Event], events: Sequence[Event],
                    locks: Sequence[Event], p: Params) -> str:
    inside = [e for e in window if e.t <= stall.end
              and e.t + float(e.get("latency_s", 0.0)) >= stall.start]
    worst: dict[str, float] = {}
    for e in inside:
        name = str(e.get("name"))
        worst[name] = max(worst.get(name, 0.0), float(e.get("latency_s", 0.0)))
    who = ", ".join(f"{n}s waited up to {_ms(v)} ms" for n, v in sorted(worst.items()))
    waves = [e for e in events if e.kind == "instance" and e.get("phase") == "start"
             and e.t <= stall.start]
    queue = [e for e in locks if stall.start <= e.t <= stall.end]
    text = (f"{stall.name}s stalled for {_ms(stall.length_s)} ms > max_stall_ms "
            f"{p.max_stall_ms:g}: no {stall.name} completed from t={stall.start:.1f} to "
            f"{stall.end:.1f} s while {stall.ops} waited ({who})")
    if queue:
        text += (f"; up to {max(int(e.get('waiting', 0)) for e in queue)} sessions queued for "
                 f"locks on repro_jobs, {max(int(e.get('waiting_share', 0)) for e in queue)} "
                 f"of them CREATE INDEX (SHARE)")
    if waves:
        text += f"; deploy wave {waves[-1].get('wave')} had started at t={waves[-1].t:.1f} s"
    return text
