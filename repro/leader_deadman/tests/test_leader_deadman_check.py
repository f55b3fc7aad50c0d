"""The leader_deadman oracle on hand-written histories: every branch of the verdict."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from repro.harness.checks import Outcome
from repro.harness.history import Event

from ..check import Params, check

P = Params(servers=("srv-0", "srv-1", "srv-2"), interval_s=1.0, max_takeover_s=10.0,
           fault="kill")
FAULT, HEAL, END = 10.0, 23.0, 30.0


def ev(t: float, kind: str, host: str = "", **fields: Any) -> Event:
    return Event(t=round(t, 3), kind=kind, host=host, fields=fields)


def decide(host: str, start: float, stop: float, every: float = 1.0) -> list[Event]:
    n = int((stop - start) / every)
    return [ev(start + i * every, "mark", host, panel="decisions", name="decision")
            for i in range(n)]


def history(decisions: list[Event], *, shortfall: str = "", fault: bool = True,
            probes_ok: bool = True, kind: str = "kill") -> list[Event]:
    events = [ev(3.0, "phase", name="control"), *decisions]
    if fault:
        events += [ev(FAULT, "fault.start", "srv-0", fault=kind, shortfall=shortfall),
                   ev(HEAL, "fault.stop", "srv-0", fault=kind)]
    events += [ev(t / 2, "probe", s, leg="tcp", ok=probes_ok or s == "srv-0")
               for t in range(2, int(END * 2)) for s in P.servers]
    return sorted([*events, ev(END, "phase", name="end")], key=lambda e: e.t)


def test_takeover_within_the_limit_passes() -> None:
    v = check(history(decide("srv-0", 4, FAULT) + decide("srv-1", FAULT + 3.5, END)), P)
    assert v.outcome is Outcome.PASS, v.describe()
    assert v.figures["takeover_s"] == 3.5 and v.figures["new_leader"] == "srv-1"


def test_nobody_taking_over_is_a_static_cluster() -> None:
    v = check(history(decide("srv-0", 4, FAULT)), P)
    assert v.outcome is Outcome.FAIL
    assert any("cluster static" in r and "srv-0 was killed" in r for r in v.reasons), v.reasons
    assert v.figures["static_s"] >= END - FAULT


def test_a_late_takeover_fails_with_how_late() -> None:
    v = check(history(decide("srv-0", 4, FAULT) + decide("srv-2", FAULT + 12, END)), P)
    assert v.outcome is Outcome.FAIL
    assert any("srv-2 decided only 12.0 s after" in r for r in v.reasons), v.reasons


def test_two_deciders_within_one_interval_is_split_brain() -> None:
    both = decide("srv-0", 4, FAULT) + decide("srv-1", 4.3, FAULT)
    v = check(history(both + decide("srv-1", FAULT + 3, END)), P)
    assert v.outcome is Outcome.FAIL, v.describe()
    assert any("split brain" in r for r in v.reasons), v.reasons


def test_leadership_changing_with_no_fault_fails() -> None:
    flip = decide("srv-0", 4, 7) + decide("srv-1", 8.5, FAULT)
    v = check(history(flip + decide("srv-2", FAULT + 3, END)), P)
    assert v.outcome is Outcome.FAIL
    assert any("leadership changed with no fault" in r for r in v.reasons), v.reasons


def test_two_deciders_after_healing_fail() -> None:
    ds = decide("srv-0", 4, FAULT) + decide("srv-1", FAULT + 3, END) + decide(
        "srv-0", HEAL + 1.5, HEAL + 6.5, every=5)
    v = check(history(ds), P)
    assert v.outcome is Outcome.FAIL
    assert any("servers decided after healing" in r for r in v.reasons), v.reasons


def test_no_leader_ever_elected_fails() -> None:
    v = check(history([], fault=False), P)
    assert v.outcome is Outcome.FAIL and "no leader was elected" in v.reasons[0]


def test_a_fault_that_did_not_take_is_inconclusive() -> None:
    ds = decide("srv-0", 4, FAULT) + decide("srv-1", FAULT + 3, END)
    v = check(history(ds, shortfall="srv-0 still answers a TCP connect"), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()


def test_the_leader_deciding_through_its_fault_is_inconclusive() -> None:
    # the kill missed: the leader keeps deciding and nobody else needs to. Not "static".
    v = check(history(decide("srv-0", 4, END)), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert len(v.reasons) == 1 and "srv-0 still decided" in v.reasons[0], v.reasons
    assert v.figures["new_leader"] is None  # measured all the same


def test_a_paused_leader_deciding_through_its_pause_is_inconclusive() -> None:
    v = check(history(decide("srv-0", 4, END), kind="pause"), replace(P, fault="pause"))
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert v.reasons == ("srv-0 still decided 11 times while paused: the fault did not take",)


def test_no_live_server_to_take_over_is_inconclusive() -> None:
    # the others were down through the fault: nobody could take over, nor decide after
    v = check(history(decide("srv-0", 4, FAULT), probes_ok=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert len(v.reasons) == 1 and "nobody alive could have taken over" in v.reasons[0]


def test_a_kill_that_missed_is_inconclusive_alone_for_a_static_agent() -> None:
    # the pre-fix agent under a kill that recorded a shortfall: not flagged for it
    v = check(history(decide("srv-0", 4, FAULT), shortfall="srv-0 still answers"), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert v.reasons == ("the fault did not take: srv-0 still answers",)


def test_a_leader_never_taken_away_is_inconclusive() -> None:
    v = check(history(decide("srv-0", 4, END), fault=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert v.reasons == ("the leader was never taken away",)


def test_split_brain_is_a_failure_even_when_the_fault_did_not_take() -> None:
    both = decide("srv-0", 4, END) + decide("srv-1", FAULT + 3.3, END)
    v = check(history(both, kind="partition"), replace(P, fault="partition"))
    assert v.outcome is Outcome.FAIL, v.describe()
    assert any("split brain" in r for r in v.reasons), v.reasons
    assert any("still decided" in r for r in v.reasons), v.reasons  # listed beside it
    assert not any("cluster static" in r for r in v.reasons), v.reasons


def test_an_unfenced_leader_back_from_a_pause_beside_the_new_one_fails() -> None:
    # paused: srv-1 takes over; thawed: srv-0 decides again on its old belief
    ds = decide("srv-0", 4, FAULT) + decide("srv-1", FAULT + 4, END) + decide(
        "srv-0", HEAL + 0.4, END)
    v = check(history(ds, kind="pause"), replace(P, fault="pause"))
    assert v.outcome is Outcome.FAIL, v.describe()
    assert v.reasons[0].startswith("split brain: "), v.reasons
    assert "2 servers decided after healing (srv-0, srv-1): not one leader" in v.reasons
    assert v.figures["takeover_s"] == 4.0 and v.figures["deciders_after"] == 2


def test_nobody_deciding_after_healing_fails() -> None:
    v = check(history(decide("srv-0", 4, FAULT) + decide("srv-1", FAULT + 3, HEAL)), P)
    assert v.outcome is Outcome.FAIL, v.describe()
    assert v.reasons == ("nobody decided in the 7.0 s after healing",)
