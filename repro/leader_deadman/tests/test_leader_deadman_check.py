"""The leader_deadman oracle on hand-written histories: every branch of the verdict."""

from __future__ import annotations

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
            probes_ok: bool = True) -> list[Event]:
    events = [ev(3.0, "phase", name="control"), *decisions]
    if fault:
        events += [ev(FAULT, "fault.start", "srv-0", fault="kill", shortfall=shortfall),
                   ev(HEAL, "fault.stop", "srv-0", fault="kill")]
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
    assert v.outcome is Outcome.FAIL
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
    v = check(history(decide("srv-0", 4, END)), P)
    assert v.outcome is not Outcome.PASS
    assert any("still decided" in r for r in v.reasons), v.reasons


def test_no_live_server_to_take_over_is_inconclusive() -> None:
    v = check(history(decide("srv-0", 4, FAULT), probes_ok=False), P)
    assert any("nobody alive could have taken over" in r for r in v.reasons), v.reasons
