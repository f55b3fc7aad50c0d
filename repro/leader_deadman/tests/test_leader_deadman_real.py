"""The leader_deadman oracle on histories recorded by real runs (Docker, etcd 3.4, this
2-core machine under load), and on variants of them with one thing changed.

histories/: `fixed_pause` (fixed.sh, the leader paused: srv-2 took over 2.86 s after),
`unfenced_pause` (unfenced.sh, paused: srv-2 took over 3.89 s after, then the thawed srv-0
decided beside it), `unfenced_partition` (the same, cut off: srv-1 took over 3.65 s after,
the healed srv-0 decided beside it), `unfenced_kill` (unfenced.sh, killed: replaced
cleanly, a pass: a kill alone cannot tell a fenced agent from an unfenced one),
`prefix_kill` (prefix.sh, the leader killed: nobody took over).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from repro.harness.checks import Outcome
from repro.harness.history import Event, load

from ..check import Params, check

HERE = Path(__file__).parent / "histories"
SERVERS = ("srv-0", "srv-1", "srv-2")


def params(fault: str) -> Params:
    return Params(servers=SERVERS, interval_s=1.0, max_takeover_s=10.0, fault=fault)


def fault_window(events: list[Event]) -> tuple[float, float]:
    start = next(e.t for e in events if e.kind == "fault.start")
    return start, next(e.t for e in events if e.kind == "fault.stop")


def is_decision(e: Event) -> bool:
    return e.kind == "mark" and e.get("name") == "decision"


def without_decisions_of(events: list[Event], host: str) -> list[Event]:
    return [e for e in events if not (is_decision(e) and e.host == host)]


def leader_decides_through(events: list[Event], leader: str) -> list[Event]:
    """The history as if the fault had not taken: nobody else decides, the leader goes on
    at its own cadence (1.1 s here) through the fault window."""
    start, stop = fault_window(events)
    kept = [e for e in events if not (is_decision(e) and e.host != leader)]
    more = [Event(t=round(start + 0.4 + 1.1 * i, 3), kind="mark", host=leader,
                  fields={"panel": "decisions", "name": "decision"})
            for i in range(int((stop - start) / 1.1))]
    return sorted(kept + more, key=lambda e: e.t)


def others_down_from(events: list[Event], leader: str, t0: float) -> list[Event]:
    return [dataclasses.replace(e, fields=e.fields | {"ok": False})
            if e.kind == "probe" and e.host != leader and e.t >= t0 else e for e in events]


def test_the_fixed_agent_paused_passes() -> None:
    v = check(load(HERE / "fixed_pause.jsonl"), params("pause"))
    assert v.outcome is Outcome.PASS, v.describe()
    assert v.figures["new_leader"] == "srv-2" and v.figures["takeover_s"] == 2.86


def test_the_unfenced_agent_back_from_its_pause_is_split_brain() -> None:
    v = check(load(HERE / "unfenced_pause.jsonl"), params("pause"))
    assert v.outcome is Outcome.FAIL, v.describe()
    assert v.reasons == (
        "split brain: srv-2 and srv-0 both decided within 0.23 s (one interval is 1 s) at "
        "27.15 s, and 11 more such pairs",
        "2 servers decided after healing (srv-0, srv-2): not one leader")


def test_the_unfenced_agent_back_from_its_partition_is_split_brain() -> None:
    v = check(load(HERE / "unfenced_partition.jsonl"), params("partition"))
    assert v.outcome is Outcome.FAIL, v.describe()
    assert v.reasons[0].startswith("split brain: srv-1 and srv-0 both decided"), v.reasons
    assert "2 servers decided after healing (srv-0, srv-1): not one leader" in v.reasons


def test_the_unfenced_agent_killed_passes_a_kill_cannot_tell_fencing() -> None:
    v = check(load(HERE / "unfenced_kill.jsonl"), params("kill"))
    assert v.outcome is Outcome.PASS, v.describe()
    assert v.figures["deciders_after"] == 1 and v.figures["takeover_s"] == 4.52


def test_the_prefix_agent_killed_goes_static() -> None:
    v = check(load(HERE / "prefix_kill.jsonl"), params("kill"))
    assert v.outcome is Outcome.FAIL, v.describe()
    assert any(r.startswith("cluster static for 21.1 s") for r in v.reasons), v.reasons


def test_a_pause_that_did_not_take_is_inconclusive_alone() -> None:
    events = leader_decides_through(load(HERE / "fixed_pause.jsonl"), "srv-0")
    v = check(events, params("pause"))
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert len(v.reasons) == 1 and v.reasons[0].startswith("srv-0 still decided"), v.reasons


def test_no_live_server_to_take_over_from_a_paused_leader_is_inconclusive_alone() -> None:
    events = load(HERE / "fixed_pause.jsonl")
    start, _ = fault_window(events)
    events = others_down_from(without_decisions_of(events, "srv-2"), "srv-0", start)
    v = check(events, params("pause"))
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert v.reasons == ("no server but srv-0 answered during the fault: nobody alive could "
                         "have taken over",)


def test_nobody_taking_over_from_a_paused_leader_fails() -> None:
    events = without_decisions_of(load(HERE / "fixed_pause.jsonl"), "srv-2")
    v = check(events, params("pause"))
    assert v.outcome is Outcome.FAIL, v.describe()
    assert v.reasons[0].startswith("cluster static"), v.reasons
