"""The container_awareness oracle: a pure function of the history.

Pass when the service started, delivered at least `min_throughput` of the offered requests
(answered 200 within the request timeout) and the 99th percentile latency of the requests
the observer timed honestly stayed within `p99_ms`. Figures: what the JVM saw (available
processors, as a JVM with the options under test answered in the service's container), the
pools the service sized from it (as it reported them), its live threads (from /proc), the
container's CPU quota (from its cgroup), offered and delivered rates, latency percentiles.

Composed (repro.harness.rules) of: the service started (else fail: the configuration under
test does not run); the figures; throughput; latency; then why the run proves nothing: the
load was not offered as asked, or the observer stalled across too many of the requests to
time them (inconclusive, listed beside any failure). A request in flight across a stall of
the observer (load.py), or sent more than LATE_S late by it, is excused from the latency
verdict, never from the throughput one: a stalled observer makes answers look late, never
makes them missing. The warm-up's requests (`phase="warmup"`) are not judged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from repro.harness.checks import Verdict
from repro.harness.history import Event, of_kind
from repro.harness.rules import Findings, compose, fail, inconclusive, merge

MIN_OFFERED = 0.95   # of rate x duration_s: the load was offered as asked
MAX_EXCUSED = 0.2    # of the requests: more than this in flight across stalls proves nothing
LATE_S = 0.25        # a request the generator sent this late was sent by a starved observer


@dataclass(frozen=True)
class Params:
    host: str
    rate: float
    duration_s: float
    min_throughput: float
    p99_ms: float
    timeout_s: float


@dataclass(frozen=True)
class Observed:
    requests: list[Event]
    stalls: list[tuple[float, float]]
    excused: list[Event]      # in flight across a stall of the observer
    seen: dict[str, object]   # what the JVM saw, the pools, the quota, the threads

    @property
    def timed(self) -> list[Event]:
        return [e for e in self.requests if e not in self.excused]

    @property
    def delivered(self) -> list[Event]:
        return [e for e in self.requests if e.get("ok")]


def check(events: list[Event], p: Params) -> Verdict:
    started = _started(events, p)
    if started.failed or started.inconclusive:
        return compose(started)
    o = observe(events, p)
    return compose(_figures(o, p), _throughput(o, p), _latency(o, p), _not_in_effect(o, p))


def observe(events: list[Event], p: Params) -> Observed:
    requests = [e for e in of_kind(events, "op") if e.host == p.host
                and e.get("name") == "request" and e.get("phase") != "warmup"]
    stalls = [(float(e.get("start")), float(e.get("end"))) for e in of_kind(events, "observer")
              if e.get("name") == "stall"]
    excused = [e for e in requests if float(e.get("lag_s") or 0) > LATE_S or any(
        float(e.get("sent_t")) - float(e.get("lag_s") or 0) <= end
        and start <= float(e.get("sent_t")) + float(e.get("latency_s")) for start, end in stalls)]
    return Observed(requests, stalls, excused, _seen(events, p.host))


def _seen(events: list[Event], host: str) -> dict[str, object]:
    seen: dict[str, object] = {}
    for e in of_kind(events, "observe"):
        if e.host != host:
            continue
        if e.get("what") == "jvm":
            seen["available_processors"] = e.get("available_processors")
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
    asked = p.rate * p.duration_s
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
