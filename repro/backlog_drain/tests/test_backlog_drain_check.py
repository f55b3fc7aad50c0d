"""The backlog_drain oracle on hand-written histories: every branch of the verdict."""

from __future__ import annotations

from typing import Any

from repro.harness.checks import Outcome
from repro.harness.history import Event

from ..check import FAULT, TARGET, Params, check, declaration

P = Params(hold_s=3.0, grace_s=10.0, min_backlog=20)
S0, S1 = 8.0, 18.0
ARRIVE, DRAIN = 20.0, 16.0  # jobs/s in; net jobs/s out once healed


def ev(t: float, kind: str, host: str = "", **fields: Any) -> Event:
    return Event(t=round(t, 3), kind=kind, host=host, fields=fields)


def depth_at(t: float) -> tuple[float, float]:
    """(depth, oldest age) of a queue that backs up in the freeze and drains after it."""
    if t < S0:
        return 1.0, 0.05
    if t < S1:
        return ARRIVE * (t - S0), t - S0
    left = ARRIVE * (S1 - S0) - DRAIN * (t - S1)
    if left <= 1:
        return 1.0, 0.05
    return left, left / ARRIVE


STEADY_BACK = S1 + (ARRIVE * (S1 - S0) - 1) / DRAIN  # about +12.4 s after the heal


def history(*, declared_at: float | None, alarm_at: float | None = S0 + 2, end: float = 45.0,
            fault: bool = True, shortfall: str = "", finished_in_freeze: int = 4,
            answered_in_freeze: float | None = None, gap: tuple[float, float] | None = None,
            died: bool = False, backlog: bool = True) -> list[Event]:
    events = []
    if fault:
        events += [ev(S0, "fault.start", TARGET, fault=FAULT, params={}, measured={},
                      shortfall=shortfall), ev(S1, "fault.stop", TARGET, fault=FAULT)]
    done = 0.0
    t = 0.5
    while t <= end:
        if not (gap and gap[0] < t < gap[1]):
            d, age = depth_at(t) if backlog else (1.0, 0.05)
            if S0 <= t <= S1:
                done_now = done + finished_in_freeze * (t - S0) / (S1 - S0)
            else:
                done_now = done + 20 * 0.25
                done = done_now
            events.append(ev(t, "queue", "primary", depth=int(d), oldest_age_s=round(age, 3),
                             done=int(done_now if S0 <= t <= S1 else done)))
        t += 0.25
    t = S0
    while t <= S1 + 2:
        frozen = S0 <= t < S1 and not (answered_in_freeze and t >= answered_in_freeze)
        for r in ("replica1", "replica2"):
            events.append(ev(t, "probe", r, leg="query", ok=not frozen,
                             took_s=1.0 if frozen else 0.01))
        t += 1.0
    t = S0 + 0.05
    while t <= end:
        rc = 1
        if alarm_at is None or t < alarm_at:
            rc = 0 if alarm_at is None or t < S0 + 1 else 1
        if declared_at is not None and t >= declared_at:
            rc = 0
        events.append(ev(t, "resolution", "check", rc=rc, took_s=0.3))
        t += 1.0
    if died:
        events.append(ev(12.0, "queue.died", "worker2", error="OperationalError: gone"))
    return sorted(events, key=lambda e: e.t)


def test_a_declaration_after_steady_state_returned_passes() -> None:
    v = check(history(declared_at=STEADY_BACK + 4), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert 12.0 <= v.figures["recovery_s"] <= 13.0
    assert v.figures["queued_at_declaration"] <= 2
    assert 3.0 <= v.figures["declaration_lag_s"] <= 5.5
    assert v.figures["backlog_max"] >= 190


def test_jobs_flowing_declared_with_the_backlog_queued_fails_naming_it() -> None:
    v = check(history(declared_at=S1 + 0.5), P)
    assert v.outcome is Outcome.FAIL, v.describe()
    reason = v.reasons[0]
    assert "declared resolved +1.35 s after the heal" in reason, reason  # the poll's exit
    assert "jobs still queued" in reason
    assert v.figures["queued_at_declaration"] >= 180
    assert v.figures["oldest_at_declaration_s"] >= 9
    assert "returned only +12" in reason


def test_a_declaration_during_the_freeze_fails() -> None:
    v = check(history(declared_at=S0 + 5), P)
    assert v.outcome is Outcome.FAIL
    assert "while the replicas were still frozen" in v.reasons[0]


def test_a_declaration_one_poll_early_is_not_early() -> None:
    v = check(history(declared_at=STEADY_BACK - 0.9), P)
    assert v.outcome is Outcome.PASS, v.reasons


def test_a_late_declaration_fails() -> None:
    v = check(history(declared_at=STEADY_BACK + 12, end=60), P)
    assert v.outcome is Outcome.FAIL
    assert "only 1" in v.reasons[0] and "after steady state returned" in v.reasons[0]


def test_never_declared_fails_once_the_grace_has_passed() -> None:
    v = check(history(declared_at=None, end=STEADY_BACK + 12), P)
    assert v.outcome is Outcome.FAIL
    assert "never declared resolved" in v.reasons[0]


def test_never_declared_inside_the_grace_is_inconclusive() -> None:
    v = check(history(declared_at=None, end=STEADY_BACK + 5), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert "inside the grace" in v.reasons[0]


def test_a_check_that_never_reports_the_incident_fails() -> None:
    v = check(history(declared_at=None, alarm_at=None), P)
    assert v.outcome is Outcome.FAIL, v.describe()
    assert v.reasons[0].startswith("the resolution check never reported the incident")
    assert len(v.reasons) == 1, v.reasons  # the freeze took: nothing inconclusive beside it


def test_a_poll_is_dated_by_its_exit() -> None:
    events = [ev(S0 + 9.5, "resolution", "check", rc=0, took_s=1.8),
              ev(S0 + 2, "resolution", "check", rc=1, took_s=0.3)]
    d = declaration(events, S0)
    assert d.first_alarm == S0 + 2.3 and d.declared == S0 + 11.3  # after the heal at S0 + 10


def test_exit_0_before_the_first_alarm_declares_nothing() -> None:
    events = history(declared_at=STEADY_BACK + 4)
    d = declaration(events, S0)
    assert d.early_zero == 1 and d.first_alarm is not None and d.first_alarm > S0 + 1
    assert d.declared is not None and d.declared >= STEADY_BACK + 4


def test_steady_state_never_back_and_nothing_declared_is_inconclusive() -> None:
    v = check(history(declared_at=None, end=S1 + 8), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert "never returned" in v.reasons[0]


def test_declared_while_steady_state_never_came_back_fails() -> None:
    v = check(history(declared_at=S1 + 1, end=S1 + 8), P)
    assert v.outcome is Outcome.FAIL
    assert "had not returned when observation ended" in v.reasons[0]


def test_no_fault_is_inconclusive() -> None:
    v = check(history(declared_at=None, fault=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.reasons == ("the replicas were never frozen",)


def test_a_freeze_that_missed_is_inconclusive() -> None:
    v = check(history(declared_at=STEADY_BACK + 4, shortfall="no process to freeze"), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("the freeze did not take: no process" in r for r in v.reasons)


def test_workers_that_kept_finishing_are_inconclusive() -> None:
    v = check(history(declared_at=STEADY_BACK + 4, finished_in_freeze=60), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("did not stall" in r for r in v.reasons)


def test_a_freeze_that_did_not_hold_is_inconclusive_and_heals_early() -> None:
    v = check(history(declared_at=STEADY_BACK + 4, answered_in_freeze=S0 + 5), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("the freeze did not hold" in r for r in v.reasons)


def test_no_backlog_is_inconclusive() -> None:
    v = check(history(declared_at=S1 + 1, backlog=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert len(v.reasons) == 1 and v.reasons[0].startswith("no backlog formed"), v.reasons


def test_no_backlog_and_a_correct_check_that_never_alarmed_is_inconclusive_alone() -> None:
    # nothing backed up, so a correct check saw nothing to report: not its failure
    v = check(history(declared_at=None, alarm_at=None, backlog=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert len(v.reasons) == 1 and v.reasons[0].startswith("no backlog formed"), v.reasons
    assert v.figures["first_alarm_s"] is None  # the declaration's figures are kept


def test_a_freeze_that_did_not_hold_and_no_alarm_is_inconclusive_alone() -> None:
    # the replicas answered 1.5 s in: the workers went on, the queue never backed up,
    # and a correct check never alarmed
    v = check(history(declared_at=None, alarm_at=None, answered_in_freeze=S0 + 1.5,
                      finished_in_freeze=60, backlog=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert any("the freeze did not hold" in r for r in v.reasons), v.reasons
    assert not any("never reported" in r for r in v.reasons), v.reasons


def test_a_freeze_that_missed_and_no_alarm_is_inconclusive_alone() -> None:
    v = check(history(declared_at=None, alarm_at=None, shortfall="no process to freeze",
                      backlog=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert v.reasons[0] == "the freeze did not take: no process to freeze", v.reasons
    assert not any("never reported" in r for r in v.reasons), v.reasons


def test_an_early_declaration_on_a_freeze_that_did_not_hold_is_inconclusive() -> None:
    # the pre-fix check on a freeze thawed early: nothing to judge it against
    v = check(history(declared_at=S0 + 3, answered_in_freeze=S0 + 2), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert not any("declared resolved" in r for r in v.reasons), v.reasons


def test_a_silent_sampler_and_a_dead_worker_are_inconclusive() -> None:
    v = check(history(declared_at=STEADY_BACK + 4, gap=(30.0, 33.0), died=True), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("observer was starved" in r for r in v.reasons)
    assert any("worker2 died" in r for r in v.reasons)
