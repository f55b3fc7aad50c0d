"""The blackhole_replica oracle on hand-written histories: every branch of the verdict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from repro.harness.checks import Outcome
from repro.harness.history import Event

from ..check import Params, check, in_flight

P = Params(max_p99_ms=500, min_success=0.99, max_in_flight=50, rate=20)
S0, S1, END = 5.0, 15.0, 23.0


def ev(t: float, kind: str, host: str = "", **fields: Any) -> Event:
    return Event(t=round(t, 3), kind=kind, host=host, fields=fields)


Latency = Callable[[float], tuple[float, bool]]  # due time -> (latency, ok)


Served = Callable[[float], float | None]  # t -> replica1's reads a second (None: not read)


def taken_back(per_s: float, at: float = S1 + 0.5) -> Served:
    """replica1 serving the caller `per_s` reads a second, unread while frozen, serving
    again from `at`."""
    return lambda t: None if S0 < t < S1 else (0.0 if S1 <= t < at else per_s)


def never_back(per_s: float, burst: int = 0) -> Served:
    """A caller that drops the frozen replica and never takes it back: only `burst` reads
    (queued in the frozen server) run at the thaw, then none."""
    def rate(t: float) -> float | None:
        if S0 < t < S1:
            return None
        if t <= S0:
            return per_s
        return burst / 0.25 if S1 <= t < S1 + 0.25 else 0.0
    return rate


def counters(served: Served, every: float = 0.25) -> list[Event]:
    """replica1's own count of reads, sampled every `every` s (replica2 serves the rest)."""
    out, total, t = [], 1000.0, 0.5
    while t < END:
        r = served(t)
        if r is not None:
            total += r * every
            out.append(ev(t, "series", "replica1", panel="served", name="reads",
                          value=int(total), reads=int(total)))
        t = round(t + every, 3)
    return out


def healthy(t: float) -> tuple[float, bool]:
    return 0.01, True


def backed_up(t: float) -> tuple[float, bool]:
    """The pre-fix caller: requests inside the freeze wait until it ends (or 5 s)."""
    if S0 <= t <= S1:
        wait = min(S1 - t, 5.0)
        return wait, wait < 5.0
    return 0.01, True


def history(latency: Latency = healthy, *, health_down: tuple[float, float] | None = None,
            node_answers: bool = False, tcp_ok: bool = True, fault: bool = True,
            shortfall: str = "", ready: bool = True, ticks_gap: tuple[float, float] | None = None,
            rate: float = 20.0, node_back: bool = True, served: Served | None = None
            ) -> list[Event]:
    events = [ev(0.0, "caller", "caller", phase="ready", ok=ready,
                 error="" if ready else "not ready within 20 s")]
    if fault:
        events += [ev(S0, "fault.start", "replica1", fault="pause", params={},
                      measured={"tasks_frozen": 6}, shortfall=shortfall),
                   ev(S1, "fault.stop", "replica1", fault="pause")]
    n = int(END * rate)
    for i in range(int(rate), n):
        t = i / rate
        lat, ok = latency(t)
        events.append(ev(t, "op", "caller", name="get", ok=ok, latency_s=lat,
                         status=200 if ok else 0))
    t = 1.0
    while t < END:
        down = health_down is not None and health_down[0] <= t < health_down[1]
        events.append(ev(t, "probe", "caller", leg="health", ok=not down))
        inside = S0 <= t <= S1 and fault
        for node in ("replica1", "replica2"):
            frozen = inside and node == "replica1"
            answers = (not frozen or node_answers) and (node_back or t < S1 or node != "replica1")
            events.append(ev(t, "probe", node, leg="tcp", ok=tcp_ok or not frozen))
            events.append(ev(t + 0.01, "probe", node, leg="query", ok=answers))
        t += 0.5
    events += counters(served or taken_back(rate / 2))
    t = 0.0
    while t < END:
        if not (ticks_gap and ticks_gap[0] < t < ticks_gap[1]):
            events.append(ev(t, "tick", "harness"))
        t += 0.05
    return sorted(events, key=lambda e: e.t)


def test_a_caller_that_fails_over_passes() -> None:
    v = check(history(), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["success"] == 1.0 and v.figures["p99_ms"] == 10.0
    assert v.figures["recovery_s"] is not None and v.figures["recovery_s"] <= 1.0
    assert v.figures["node_queries_answered"] == 0 and v.figures["node_connects_ok"] > 0


def test_a_caller_that_waits_on_the_frozen_replica_fails_on_every_count() -> None:
    v = check(history(backed_up, health_down=(S0 + 0.5, S1)), P)
    assert v.outcome is Outcome.FAIL
    text = "\n".join(v.reasons)
    assert "p99 latency" in text and "requests answered during the fault" in text
    assert "piled up" in text and "/health did not answer" in text
    assert v.figures["max_in_flight"] > 50


def test_the_requests_the_fault_reached_count_even_if_due_just_before_it() -> None:
    def stuck_at_start(t: float) -> tuple[float, bool]:
        return (5.0, False) if S0 - 0.2 <= t < S0 else (0.01, True)

    v = check(history(stuck_at_start), P)
    assert v.figures["baseline_success"] == 1.0  # not counted as a failure before the fault
    assert v.outcome is Outcome.FAIL and v.figures["failed_during"] == 4


def test_slow_recovery_after_the_thaw_fails() -> None:
    def slow_after(t: float) -> tuple[float, bool]:
        return (0.9, True) if S1 <= t < S1 + 4.0 else (0.01, True)

    v = check(history(slow_after), Params(**{**P.__dict__, "max_p99_ms": 500}))
    assert v.outcome is Outcome.FAIL
    assert any("to return to its pre-fault band" in r for r in v.reasons), v.reasons


def test_never_recovered_fails() -> None:
    def broken_after(t: float) -> tuple[float, bool]:
        return (0.01, False) if t >= S1 else (0.01, True)

    v = check(history(broken_after), P)
    assert v.outcome is Outcome.FAIL
    assert any("had not returned to its pre-fault band" in r for r in v.reasons), v.reasons


def test_failures_before_any_fault_fail() -> None:
    def broken(t: float) -> tuple[float, bool]:
        return 0.01, t > 3.0

    v = check(history(broken), P)
    assert v.outcome is Outcome.FAIL
    assert any("before any fault" in r for r in v.reasons)


def test_a_caller_that_never_became_ready_fails() -> None:
    v = check([ev(0.0, "caller", "caller", phase="ready", ok=False, error="exited")], P)
    assert v.outcome is Outcome.INCONCLUSIVE or v.outcome is Outcome.FAIL
    assert any("never became ready" in r for r in v.reasons)
    assert v.outcome is Outcome.FAIL


def test_no_fault_is_inconclusive() -> None:
    v = check(history(fault=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.reasons == ("replica1 was never faulted (pause)",)


def test_a_freeze_that_did_not_take_is_inconclusive() -> None:
    v = check(history(shortfall="no process to freeze"), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("did not take: no process to freeze" in r for r in v.reasons)


def test_a_replica_that_still_answers_is_inconclusive() -> None:
    v = check(history(node_answers=True), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("still answered" in r for r in v.reasons)


def test_a_frozen_replica_must_still_accept_connections() -> None:
    v = check(history(tcp_ok=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("no TCP connect" in r for r in v.reasons)
    drop = Params(**{**P.__dict__, "kernel_acks": False})
    assert check(history(tcp_ok=False), drop).outcome is Outcome.PASS


def test_a_replica_that_never_comes_back_is_inconclusive() -> None:
    v = check(history(node_back=False), P)
    assert any("never answered again" in r for r in v.reasons)


def test_a_failure_outranks_the_inconclusive_reasons() -> None:
    v = check(history(backed_up, node_answers=True), P)
    assert v.outcome is Outcome.FAIL
    assert any("still answered" in r for r in v.reasons)


def test_too_little_load_is_inconclusive() -> None:
    v = check(history(rate=5.0), Params(**{**P.__dict__, "rate": 20.0}))
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("under 50% of its rate" in r for r in v.reasons)


def test_a_frozen_harness_is_taken_out_of_the_latencies_and_can_be_inconclusive() -> None:
    def slow_in_gap(t: float) -> tuple[float, bool]:
        return (3.0, True) if 6.0 <= t < 13.0 else (0.01, True)

    v = check(history(slow_in_gap, ticks_gap=(6.0, 16.0)), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.reasons
    assert any("harness itself was frozen" in r for r in v.reasons)
    assert v.figures["p99_ms"] <= 500


def test_in_flight_counts_overlapping_requests() -> None:
    ops = [ev(0.0, "op", latency_s=2.0), ev(0.5, "op", latency_s=0.1),
           ev(1.0, "op", latency_s=1.0), ev(3.0, "op", latency_s=0.1)]
    assert in_flight(ops) == (2, 0.5)


# -- serving again, on the replica's own counters ---------------------------------------------

def test_the_thawed_replica_serving_again_is_measured_on_its_counters() -> None:
    v = check(history(served=taken_back(12.0, at=S1 + 0.75)), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["served_back_s"] == 0.75 and v.figures["node_base_reads_per_s"] == 12.0


def test_a_caller_that_never_takes_the_replica_back_fails() -> None:
    """fixtures/blackhole_replica/broken_never_back.py: fails over, never probes back."""
    v = check(history(served=never_back(12.0)), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons == ("replica1 did not serve the caller's reads again within 3 s of the "
                         "thaw, by its own counters: 0 reads in the 7.8 s after it (at least "
                         "4 in each of two 1.5 s windows expected: 25% of the 12.0 a second it "
                         "served before the fault)",)
    assert v.figures["served_back_s"] is None


def test_reads_queued_in_the_frozen_replica_run_at_the_thaw_do_not_count_as_back() -> None:
    v = check(history(served=never_back(12.0, burst=16)), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith("replica1 did not serve the caller's reads again")
    assert v.figures["node_reads_first_s"] == 16


def test_taken_back_too_late_fails_saying_when() -> None:
    v = check(history(served=taken_back(12.0, at=S1 + 4.5)), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].endswith("; it did from 4.50 s")


def test_a_trickle_after_the_thaw_is_not_serving_again() -> None:
    v = check(history(served=lambda t: None if S0 < t < S1 else (12.0 if t < S0 else 1.0)), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith("replica1 did not serve the caller's reads again")


def test_a_caller_that_never_read_the_frozen_replica_is_inconclusive() -> None:
    v = check(history(served=lambda t: None if S0 < t < S1 else 0.0), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.reasons == ("replica1 served none of the caller's reads before the fault (0.00 a "
                         "second by its own counters): its pause tested nothing",)


def test_counters_never_read_after_the_thaw_are_inconclusive() -> None:
    v = check(history(served=lambda t: None if t > S0 else 12.0), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.reasons == ("replica1's own counters could not be read after the thaw",)


def test_a_replica_that_never_answered_again_is_not_judged_on_serving() -> None:
    v = check(history(node_back=False, served=never_back(12.0)), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.reasons == ("replica1 never answered again after the fault healed",)
