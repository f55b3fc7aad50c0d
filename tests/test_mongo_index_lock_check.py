"""The mongo_index_lock oracle on hand-written histories (no database needed)."""

from __future__ import annotations

from typing import Any

import pytest

from repro.harness.checks import Outcome, run_checker
from repro.harness.history import Event
from repro.mongo_index_lock import check
from repro.mongo_index_lock.storm import FAULT
from tests.histories import ev

PARAMS = check.Params(max_stall_ms=1000, p99_ms=250, instances=4)
RATE = 100.0  # ops/s, two clients: one writer, one reader


def history(*, stall: tuple[float, float] | None = None, stall_reads: bool = False,
            instances_ok: int = 4, instances: int = 4, workload: bool = True,
            batch: bool = True, tickets: list[tuple[float, int]] | None = None,
            freeze: tuple[float, float] | None = None, fail_op_at: float | None = None,
            end: float = 20.0, latency_s: float = 0.002,
            more_freezes: tuple[tuple[float, float], ...] = ()) -> list[Event]:
    """A storm from t=5 to t=15; the workload from 0 to `end` at RATE ops/s.

    `stall` = (from, to): operations of the stalled kind scheduled then complete
    only at `to` (a client blocked in a lock queue). `freeze` = (from, to): the
    harness's ticks stop and every operation in flight across it completes at
    `to` at the earliest (both can hold at once: a stall with a freeze inside).
    """
    frozen = [f for f in (freeze, *more_freezes) if f]
    out: list[Event] = [ev(0.0, "workload", event="start", rate=RATE, clients=2)]
    t = 0.0
    while t <= end:
        out.append(ev(round(t, 3), "tick"))
        t += 0.05
        t = next((b for a, b in frozen if a <= t < b), t)
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
                done = t + latency_s
                stalled = stall and (name == "write" or stall_reads)
                if stalled and stall[0] <= t < stall[1]:
                    done = max(done, stall[1])
                for a, b in frozen:
                    if done > a - 0.001 and t < b:
                        done = max(done, b)
                fields: dict[str, Any] = {"name": name, "ok": True, "latency_s": done - t}
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


# -- failure outranks inconclusive: the checker drops no observed failure (issue 10) --------
# Before, a stall mostly inside a harness freeze was discounted whole and failed operations
# across a freeze (or before the storm, or with no storm) were not counted: each of these
# histories was judged INCONCLUSIVE (or PASS) although the harness had watched a failure.

def test_stall_watched_past_the_limit_fails_with_a_freeze_inside_it() -> None:
    # writes stall 8-11 s; the harness is frozen 9.0-10.8 s inside it: 1.2 s of the stall
    # were watched (> 1000 ms). Old verdict: inconclusive ("the only stall ... frozen").
    v = judge(history(stall=(8.0, 11.0), freeze=(9.0, 10.8)))
    assert v.outcome is Outcome.FAIL, v.describe()
    assert v.figures["longest_stall_ms"] == pytest.approx(1200, abs=40)
    assert v.figures["stall_frozen_ms"] == pytest.approx(1800, abs=40)
    assert v.reasons[0].startswith("writes stalled for"), v.describe()
    assert "the harness was frozen, not counted" in v.reasons[0]
    assert not any("harness itself being frozen" in r for r in v.reasons)


def test_a_stall_beside_an_inconclusive_freeze_fails_with_the_reason_beside_it() -> None:
    # a real 3 s stall, and a 3.5 s freeze later that covers over 20 % of the operations:
    # the freeze makes the run inconclusive only if nothing failed; here something did
    v = judge(history(stall=(8.0, 11.0), freeze=(15.5, 19.0)))
    assert v.outcome is Outcome.FAIL, v.describe()
    assert v.reasons[0].startswith("writes stalled for")
    assert v.figures["longest_stall_ms"] == pytest.approx(3000, abs=30)
    frozen = [r for r in v.reasons if r.startswith("the harness itself was frozen")]
    assert frozen and v.reasons.index(frozen[0]) > 0, v.describe()


def test_a_freeze_alone_is_inconclusive_and_nothing_failed() -> None:
    v = judge(history(freeze=(9.0, 10.8)))
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert v.figures["ops_failed"] == 0
    assert v.figures["longest_stall_ms"] < PARAMS.max_stall_ms
    assert all("frozen" in r for r in v.reasons), v.describe()


@pytest.mark.parametrize("condition", [
    {"instances": 3},              # fewer instances than asked
    {"batch": False},              # the background transaction never held its locks
    {"freeze": (9.0, 10.8)},       # the only stall over the limit is a freeze
    {"freeze": (9.0, 13.0)},       # over 20 % of the operations across a freeze
])
def test_any_inconclusive_condition_with_a_failed_operation_is_fail(
        condition: dict[str, Any]) -> None:
    alone = judge(history(**condition))
    assert alone.outcome is Outcome.INCONCLUSIVE, alone.describe()
    v = judge(history(fail_op_at=9.5, **condition))
    assert v.outcome is Outcome.FAIL, v.describe()
    assert "operations failed" in v.reasons[0]
    assert set(alone.reasons) <= set(v.reasons[1:]), v.describe()  # kept beside it


def test_a_failed_operation_across_a_freeze_counts() -> None:
    # old: operations overlapping a freeze were left out of the "any operation failed" rule
    v = judge(history(freeze=(9.0, 10.8), fail_op_at=9.5))
    assert v.outcome is Outcome.FAIL, v.describe()
    assert v.figures["ops_failed"] >= 1
    failed = next(r for r in v.reasons if "operations failed" in r)
    assert "across a harness freeze" in failed and "statement timeout" in failed


def test_a_failed_operation_before_the_storm_counts() -> None:
    v = judge(history(fail_op_at=2.0))
    assert v.outcome is Outcome.FAIL, v.describe()
    n = v.figures["ops_failed"]
    assert v.reasons[0].startswith(f"{n} operations failed ({n} before the storm)"), v.describe()


def test_a_failed_operation_without_a_storm_is_fail_not_inconclusive() -> None:
    events = [e for e in history(fail_op_at=9.0) if not e.kind.startswith("fault.")]
    v = judge(events)
    assert v.outcome is Outcome.FAIL, v.describe()
    assert "operations failed" in v.reasons[0]
    assert v.reasons[1:] == ("the deploy storm never started",)


def test_slow_operations_across_a_freeze_count_by_their_observed_part() -> None:
    # every operation takes 300 ms (p99 limit 250); a 4 s freeze covers over 20 % of them.
    # Old: those were left out of the percentiles and the run was inconclusive. Now each
    # counts for the time it was watched: p99 over the limit fails, the freeze beside it.
    v = judge(history(latency_s=0.3, freeze=(8.0, 12.0)),
              check.Params(max_stall_ms=5000, p99_ms=250, instances=4))
    assert v.outcome is Outcome.FAIL, v.describe()
    assert v.figures["p99_ms"] == pytest.approx(300, abs=1)
    assert v.reasons[0].startswith("p99 latency 300")
    assert any(r.startswith("the harness itself was frozen") for r in v.reasons[1:])


def test_observed_time_leaves_out_only_the_frozen_part() -> None:
    assert check.observed_s(1.0, 4.0, [(2.0, 3.0)]) == pytest.approx(2.0)
    assert check.observed_s(1.0, 4.0, [(0.0, 1.5), (3.5, 9.0)]) == pytest.approx(2.0)
    assert check.observed_s(1.0, 2.0, [(1.0, 2.0)]) == pytest.approx(0.0)
    assert check.observed_s(1.0, 2.0, []) == pytest.approx(1.0)
