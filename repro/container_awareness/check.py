"""The container_awareness oracle: a pure function of the history.

Pass when the service started, delivered at least `min_throughput` of the offered requests
(answered 200 within the request timeout) and the 99th percentile latency of the requests
the observer timed honestly stayed within `p99_ms`. Figures: what the JVM saw (available
processors, as a JVM with the options under test answered in the service's container), the
pools the service sized from it (as it reported them), its live threads (from /proc), the
container's CPU quota (from its cgroup), the runner's CPUs, offered and delivered rates,
latency percentiles.

The fault is the JVM update's container detection, measured in the service's container by
the harness's own control JVM (`-XX:+UseContainerSupport`, the update's default), whatever
the options under test. It took effect when the cgroup's quota reads back as the `cpus`
asked, and that JVM saw fewer processors than the CPUs the container can be scheduled on
(`nproc` there: the runner's CPUs, or its cpuset). Otherwise pools sized from the quota
are those sized from the runner, and no verdict on the options under test means anything:
inconclusive for that reason alone (`rules.given`), never pass, never fail. On a runner of
one CPU (or a cpuset of one) nothing can be detected below one processor: always
inconclusive.

The offered load is asked either as a fixed `rate` or (rate 0) sized from the runner's
CPUs as recorded in the history (load.sized_rate), the same way the scenario sized it.

Composed (repro.harness.rules) of: the service started (else fail: the configuration under
test does not run, a failure whatever the fault did); the figures; then, given the fault
took: throughput; latency; why the run proves nothing: the load was not offered as asked,
or the observer stalled across too many of the requests to time them (inconclusive, listed
beside any failure). A request in flight across a stall of the observer (load.py), or sent
more than LATE_S late by it, is excused from the latency verdict, never from the throughput
one: a stalled observer makes answers look late, never makes them missing. The warm-up's
requests (`phase="warmup"`) are not judged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from repro.container_awareness.load import sized_rate
from repro.harness.checks import Verdict
from repro.harness.history import Event, of_kind
from repro.harness.rules import Findings, compose, fail, given, inconclusive, merge

MIN_OFFERED = 0.95   # of rate x duration_s: the load was offered as asked
MAX_EXCUSED = 0.2    # of the requests: more than this in flight across stalls proves nothing
LATE_S = 0.25        # a request the generator sent this late was sent by a starved observer
QUOTA_TOLERANCE = 0.005  # CPUs: the cgroup's quota/period, as recorded (3 decimals)


@dataclass(frozen=True)
class Params:
    host: str
    rate: float           # offered requests/s asked; 0: sized from the runner's CPUs
    duration_s: float
    min_throughput: float
    p99_ms: float
    timeout_s: float
    cpus: float           # the CPU quota asked for the service's container
    load: float = 0.7     # (rate 0) share of what pools sized from the runner's CPUs carry
    downstream_ms: float = 150.0


@dataclass(frozen=True)
class Observed:
    requests: list[Event]
    stalls: list[tuple[float, float]]
    excused: list[Event]      # in flight across a stall of the observer
    seen: dict[str, object]   # what the JVM saw, the pools, the quota, the threads
    rate: float               # offered requests/s asked (0: unknown, the runner unrecorded)

    @property
    def timed(self) -> list[Event]:
        return [e for e in self.requests if e not in self.excused]

    @property
    def delivered(self) -> list[Event]:
        return [e for e in self.requests if e.get("ok")]


def check(events: list[Event], p: Params) -> Verdict:
    o = observe(events, p)
    took = fault_took(o, p)
    started = _started(events, p)
    if started.failed:
        return compose(Findings(figures=dict(o.seen)), started, took)
    if started.inconclusive:
        return compose(Findings(figures=dict(o.seen)), given(took, started))
    return compose(_figures(o, p), given(took, _throughput(o, p), _latency(o, p),
                                         _not_in_effect(o, p)))


def asked_rate(seen: dict[str, object], p: Params) -> float:
    """The offered rate asked: `rate`, or (0) sized from the runner's recorded CPUs."""
    if p.rate:
        return p.rate
    runner = seen.get("runner_cpus")
    return sized_rate(runner, p.load, p.downstream_ms) if isinstance(runner, int) else 0.0


def fault_took(o: Observed, p: Params) -> Findings:
    """The quota applied, and container detection made a JVM see fewer processors than the
    CPUs the container can be scheduled on: only then do pools from the quota differ."""
    quota, runner = o.seen.get("cpu_quota"), o.seen.get("runner_cpus")
    detected = o.seen.get("detected_processors")
    found = Findings()
    if not isinstance(quota, int | float):
        found = merge(found, inconclusive(
            f"the CPU quota of {p.host} was not read back from its cgroup (asked {p.cpus:g} "
            "CPUs): the quota the JVM would detect is unknown"))
    elif abs(quota - p.cpus) > QUOTA_TOLERANCE:
        found = merge(found, inconclusive(
            f"the CPU quota did not apply: {p.host}'s cgroup reads {quota:g} CPUs, "
            f"{p.cpus:g} asked"))
    if not isinstance(runner, int) or not isinstance(detected, int):
        missing = "the CPUs it can run on" if not isinstance(runner, int) else \
            "what a JVM with container support saw there"
        return merge(found, inconclusive(
            f"container detection not measured on {p.host}: {missing} was not recorded"))
    if detected >= runner:
        found = merge(found, inconclusive(
            f"container detection changed nothing on {p.host}: a JVM with container support "
            f"saw {detected} processors, and the container can run on {runner} CPUs; pools "
            "sized from the quota are those sized from the runner, so the run cannot show "
            "the update's effect (it needs a quota below the runner's CPUs: a runner or "
            "cpuset of at least 2 CPUs)"))
    return found


def observe(events: list[Event], p: Params) -> Observed:
    requests = [e for e in of_kind(events, "op") if e.host == p.host
                and e.get("name") == "request" and e.get("phase") != "warmup"]
    stalls = [(float(e.get("start")), float(e.get("end"))) for e in of_kind(events, "observer")
              if e.get("name") == "stall"]
    excused = [e for e in requests if float(e.get("lag_s") or 0) > LATE_S or any(
        float(e.get("sent_t")) - float(e.get("lag_s") or 0) <= end
        and start <= float(e.get("sent_t")) + float(e.get("latency_s")) for start, end in stalls)]
    seen = _seen(events, p.host)
    return Observed(requests, stalls, excused, seen, asked_rate(seen, p))


def _seen(events: list[Event], host: str) -> dict[str, object]:
    seen: dict[str, object] = {}
    for e in of_kind(events, "observe"):
        if e.host != host:
            continue
        if e.get("what") == "jvm":
            seen["available_processors"] = e.get("available_processors")
        elif e.get("what") == "detection":
            seen["detected_processors"] = e.get("available_processors")
        elif e.get("what") == "runner":
            seen["runner_cpus"] = e.get("cpus")
        elif e.get("what") == "pools":
            seen["workers"] = e.get("workers")
            seen["connections"] = e.get("connections")
            seen["service_saw_processors"] = e.get("available_processors")
        elif e.get("what") == "cpu_quota":
            seen["cpu_quota"] = e.get("cpus")
            seen["cpu_shares"] = e.get("shares")
    threads = [int(e.get("value")) for e in of_kind(events, "series")
               if e.host == host and e.get("name") == "live threads"]
    seen["live_threads_max"] = max(threads, default=None)
    return seen


def _started(events: list[Event], p: Params) -> Findings:
    life = [e for e in of_kind(events, "host") if e.host == p.host]
    failed = [e for e in life if e.get("event") == "service_failed"]
    if failed:
        out = " | ".join(str(failed[0].get("output", "")).strip().splitlines()[-3:])
        how = ("exited before it answered HTTP" if failed[0].get("exited") else
               f"did not answer HTTP within {failed[0].get('waited_s')} s of its start")
        return fail(f"the service on {p.host} {how}: {out or '(no output)'}")
    if not any(e.get("event") == "started" and e.get("what") == "service" for e in life):
        return inconclusive(f"the service on {p.host} was never started")
    return Findings()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _figures(o: Observed, p: Params) -> Findings:
    n = len(o.requests)
    span = p.duration_s
    latencies = [float(e.get("latency_s")) * 1e3 for e in o.timed]
    return Findings(figures={
        **o.seen,
        "asked_rps": o.rate,
        "offered_rps": round(n / span, 1),
        "delivered_rps": round(len(o.delivered) / span, 1),
        "delivered_fraction": round(len(o.delivered) / n, 3) if n else 0.0,
        "requests": n,
        "timeouts": sum(1 for e in o.requests if str(e.get("error", "")).startswith("no answer")),
        "errors": sum(1 for e in o.requests if not e.get("ok")
                      and not str(e.get("error", "")).startswith("no answer")),
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "excused_requests": len(o.excused),
        "observer_stall_s": round(sum(b - a for a, b in o.stalls), 2),
    })


def _pools(o: Observed) -> str:
    parts = [f"{k.replace('_', ' ')} {o.seen[k]}" for k in
             ("available_processors", "workers", "connections") if o.seen.get(k) is not None]
    return f" (the JVM saw: {', '.join(parts)})" if parts else ""


def _throughput(o: Observed, p: Params) -> Findings:
    if not o.requests:
        return Findings()
    fraction = len(o.delivered) / len(o.requests)
    if fraction >= p.min_throughput:
        return Findings()
    missing = len(o.requests) - len(o.delivered)
    return fail(f"{p.host} delivered {fraction:.0%} of the offered load "
                f"({len(o.delivered) / p.duration_s:.1f} of {len(o.requests) / p.duration_s:.1f} "
                f"requests/s; limit {p.min_throughput:.0%}): {missing} of {len(o.requests)} "
                f"requests were not answered within {p.timeout_s:g} s{_pools(o)}")


def _latency(o: Observed, p: Params) -> Findings:
    latencies = [float(e.get("latency_s")) * 1e3 for e in o.timed]
    if not latencies:
        return Findings()
    p99 = percentile(latencies, 99)
    if p99 <= p.p99_ms:
        return Findings()
    return fail(f"{p.host}'s 99th percentile latency was {p99:.0f} ms (limit {p.p99_ms:g} ms) "
                f"over {len(latencies)} requests; median {percentile(latencies, 50):.0f} ms"
                f"{_pools(o)}")


def _not_in_effect(o: Observed, p: Params) -> Findings:
    found = Findings()
    asked = o.rate * p.duration_s
    if len(o.requests) < MIN_OFFERED * asked:
        found = merge(found, inconclusive(
            f"only {len(o.requests)} of the {asked:.0f} requests asked were offered: the load "
            "did not take effect"))
    if o.requests and len(o.excused) > MAX_EXCUSED * len(o.requests):
        found = merge(found, inconclusive(
            f"the observer was starved: it stalled for {sum(b - a for a, b in o.stalls):.1f} s "
            f"or sent late (over {LATE_S:g} s) {len(o.excused)} of {len(o.requests)} requests "
            f"(limit {MAX_EXCUSED:.0%}): their latency could not be timed"))
    return found
