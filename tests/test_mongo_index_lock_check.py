"""The mongo_index_lock oracle on hand-written histories (no database needed)."""

from __future__ import annotations

from typing import Any

import pytest

from repro.checks import Outcome, run_checker
from repro.history import Event
from repro.mongo_index_lock import check
from repro.mongo_index_lock.storm import FAULT
from tests.histories import ev

PARAMS = check.Params(max_stall_ms=1000, p99_ms=250, instances=4)
RATE = 100.0  # ops/s, two clients: one writer, one reader


def history(*, stall: tuple[float, float] | None = None, stall_reads: bool = False,
            instances_ok: int = 4, instances: int = 4, workload: bool = True,
            batch: bool = True, tickets: list[tuple[float, int]] | None = None,
            freeze: tuple[float, float] | None = None, fail_op_at: float | None = None,
            end: float = 20.0) -> list[Event]:
    """A storm from t=5 to t=15; the workload from 0 to `end` at RATE ops/s.

    `stall` = (from, to): operations of the stalled kind scheduled then complete
    only at `to` (a client blocked in a lock queue). `freeze` = (from, to): the
    harness's ticks stop and every operation across it completes at `to`.
    """
    out: list[Event] = [ev(0.0, "workload", event="start", rate=RATE, clients=2)]
    t = 0.0
    while t <= end:
        out.append(ev(round(t, 3), "tick"))
        t += 0.05
        if freeze and freeze[0] <= t < freeze[1]:
            t = freeze[1]
    out.append(ev(5.0, "fault.start", fault=FAULT, applied={"instances": instances}))
    for i in range(instances):
        ok = i < instances_ok
        out.append(ev(5.0 + i * 0.1, "instance", f"instance{i}", phase="start", wave=1))
        out.append(ev(6.0 + i * 0.1, "instance", f"instance{i}", phase="exit", wave=1,
                      started=True, ok=ok, rc=0 if ok else 1, duration_s=1.0,
                      output="" if ok else "boom"))
    out.append(ev(15.0, "fault.stop", fault=FAULT, measured={}))
    if batch:
        for b in range(0, int(end), 4):
            out.append(ev(b + 0.01, "batch", "batch", phase="begin"))
            out.append(ev(b + 3.01, "batch", "batch", phase="commit", rows=1000))
    if workload:
        period = 2 / RATE
        for name, offset in (("write", 0.0), ("read", period / 2)):
            t = offset
            while t < end:
                latency = 0.002
                stalled = stall and (name == "write" or stall_reads)
                if stalled and stall[0] <= t < stall[1]:
                    latency = stall[1] - t
                if freeze and freeze[0] - 0.001 <= t < freeze[1]:
                    latency = freeze[1] - t
                fields: dict[str, Any] = {"name": name, "ok": True, "latency_s": latency}
                if fail_op_at is not None and abs(t - fail_op_at) < period / 2:
                    fields.update(ok=False, error="QueryCanceled: statement timeout")
                out.append(ev(round(t, 4), "op", f"client-{name}", **fields))
                t += period
    for t_s, available in tickets or []:
        out.append(ev(t_s, "db", "db", source="serverStatus", read_available=available,
                      read_total=8, write_available=available, write_total=8,
                      exhausted=available == 0, lock_acquire_s=t_s))
    return out


def judge(events: list[Event], params: check.Params = PARAMS) -> check.Verdict:
    return run_checker(check.check, events, params)


def test_quiet_storm_passes() -> None:
    v = judge(history())
    assert v.outcome is Outcome.PASS, v.describe()
    assert v.figures["longest_stall_ms"] == 0.0
    assert v.figures["instances_ok"] == 4
    assert v.figures["p99_ms"] == 2.0


def test_lock_queue_stall_is_flagged_with_its_length() -> None:
    v = judge(history(stall=(8.0, 11.0)))
    assert v.outcome is Outcome.FAIL
    assert v.figures["stall_kind"] == "write"
    assert v.figures["longest_stall_ms"] == pytest.approx(3000, abs=30)
    assert v.figures["stall_start_s"] == pytest.approx(8.0, abs=0.03)
    assert any(r.startswith("writes stalled for") for r in v.reasons), v.describe()
    assert any("p99 latency" in r for r in v.reasons)


def test_stall_just_under_the_limit_passes_the_stall_check() -> None:
    v = judge(history(stall=(8.0, 8.9)), check.Params(max_stall_ms=1000, p99_ms=5000,
                                                      instances=4))
    assert v.outcome is Outcome.PASS, v.describe()
    assert 800 < v.figures["longest_stall_ms"] < 1000


def test_slow_but_moving_operations_are_no_stall() -> None:
    events = [e if e.kind != "op" else Event(e.t, e.kind, e.host,
                                             {**e.fields, "latency_s": 0.4})
              for e in history()]
    v = judge(events, check.Params(max_stall_ms=1000, p99_ms=500, instances=4))
    assert v.outcome is Outcome.PASS, v.describe()
    assert v.figures["longest_stall_ms"] < 1000


def test_p99_over_the_limit_fails_without_a_stall() -> None:
    events = [e if e.kind != "op" else Event(e.t, e.kind, e.host,
                                             {**e.fields, "latency_s": 0.3})
              for e in history()]
    v = judge(events)
    assert v.outcome is Outcome.FAIL
    assert [r for r in v.reasons if "p99 latency 300.0 ms > p99_ms 250" in r]


def test_stall_after_the_storm_still_counts() -> None:
    v = judge(history(stall=(16.0, 18.0)))
    assert v.outcome is Outcome.FAIL
    assert v.figures["longest_stall_ms"] == pytest.approx(2000, abs=30)


def test_stall_before_the_storm_is_not_the_storms() -> None:
    v = judge(history(stall=(1.0, 3.0)))
    assert v.outcome is Outcome.PASS, v.describe()
    assert v.figures["baseline_p99_ms"] > 1000


def test_failed_operation_fails() -> None:
    v = judge(history(fail_op_at=9.0))
    assert v.outcome is Outcome.FAIL
    assert any("operations failed" in r for r in v.reasons)


def test_failed_startups_fail() -> None:
    v = judge(history(instances_ok=3))
    assert v.outcome is Outcome.FAIL
    assert any("1 of 4 instances failed their start-up" in r for r in v.reasons)


def test_instances_that_never_ran_make_it_inconclusive() -> None:
    events = [e for e in history() if e.kind != "instance"]
    v = judge(events)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("no service instance ran" in r for r in v.reasons)


def test_fewer_instances_than_asked_is_inconclusive() -> None:
    v = judge(history(instances=3), check.Params(max_stall_ms=1000, p99_ms=250, instances=4))
    assert v.outcome is Outcome.INCONCLUSIVE


def test_no_storm_is_inconclusive() -> None:
    events = [e for e in history() if not e.kind.startswith("fault.")]
    assert judge(events).outcome is Outcome.INCONCLUSIVE


def test_no_workload_during_the_storm_is_inconclusive_not_pass() -> None:
    v = judge(history(workload=False))
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("workload did not run during the storm" in r for r in v.reasons)


def test_workload_missing_one_kind_is_inconclusive() -> None:
    events = [e for e in history() if not (e.kind == "op" and e.get("name") == "read")]
    assert judge(events).outcome is Outcome.INCONCLUSIVE


def test_workload_far_below_its_rate_is_inconclusive() -> None:
    events = [e for i, e in enumerate(history()) if e.kind != "op" or i % 5 == 0]
    v = judge(events)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("under 50%" in r for r in v.reasons)


def test_missing_background_transaction_is_inconclusive() -> None:
    v = judge(history(batch=False))
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("background write transaction" in r for r in v.reasons)
    no_batch = check.Params(max_stall_ms=1000, p99_ms=250, instances=4, batch_expected=False)
    assert judge(history(batch=False), no_batch).outcome is Outcome.PASS


def test_ticket_exhaustion_fails_on_mongodb() -> None:
    v = judge(history(tickets=[(6.0, 5), (7.0, 0), (7.1, 0), (8.0, 3)]))
    assert v.outcome is Outcome.FAIL
    assert v.figures["min_write_tickets"] == 0
    assert any("tickets exhausted" in r for r in v.reasons)
    assert judge(history(tickets=[(6.0, 5), (7.0, 1)])).outcome is Outcome.PASS
    # one sample catching a burst is not running out
    assert judge(history(tickets=[(6.0, 5), (7.0, 0), (7.1, 2)])).outcome is Outcome.PASS


def test_harness_freeze_is_inconclusive_not_a_stall() -> None:
    v = judge(history(freeze=(9.0, 10.8)))
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert v.figures["harness_freezes"] == 1
    assert any("harness itself being frozen" in r for r in v.reasons)


def test_real_stall_still_fails_beside_a_freeze() -> None:
    v = judge(history(stall=(8.0, 11.0), freeze=(13.0, 13.6)))
    assert v.outcome is Outcome.FAIL, v.describe()
    assert v.figures["longest_stall_ms"] == pytest.approx(3000, abs=30)


def test_stalls_helper_merges_nothing_and_orders_longest_first() -> None:
    ops = [ev(0.0, "op", name="write", ok=True, latency_s=2.0),
           ev(0.5, "op", name="write", ok=True, latency_s=1.5),
           ev(3.0, "op", name="write", ok=True, latency_s=0.001),
           ev(3.1, "op", name="write", ok=True, latency_s=0.5),
           ev(0.0, "op", name="read", ok=True, latency_s=0.001)]
    found = check.stalls(ops, floor_s=0.1)
    assert [round(s.length_s, 3) for s in found] == [2.0, 0.5]
    assert found[0].name == "write" and found[0].ops == 2


def test_percentile_nearest_rank() -> None:
    assert check.percentile([], 99) == 0.0
    assert check.percentile(list(range(1, 101)), 99) == 99
    assert check.percentile([5.0], 50) == 5.0


def test_crashing_checker_is_unknown() -> None:
    bad = [ev(5.0, "fault.start", fault=FAULT), ev(6.0, "op", name="write", latency_s="x")]
    assert judge(bad).outcome is Outcome.UNKNOWN
