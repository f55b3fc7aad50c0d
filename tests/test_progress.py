"""Live progress lines, from a history as it grows (no terminal needed)."""

from __future__ import annotations

from repro.harness.history import Event
from repro.harness.progress import status


def ev(t: float, kind: str, host: str = "h", **fields: object) -> Event:
    return Event(t=t, kind=kind, host=host, fields=dict(fields))


def test_the_line_says_phase_fault_and_live_figures() -> None:
    events = [ev(0.1, "host", event="ready"), ev(0.5, "phase", name="control")]
    events += [ev(1 + i / 4, "probe", leg="tcp", ok=not 2 <= 1 + i / 4 < 3.5) for i in range(16)]
    assert status(events, 0.0)[0] == "control"
    events.append(ev(2.0, "fault.start", fault="kill", measured={"answers_tcp": False},
                     shortfall=""))
    events.append(ev(3.0, "mark", "srv-1", panel="decisions", name="decision"))
    phase, figures = status(sorted(events, key=lambda e: e.t), 0.0)
    assert phase == "fault kill (answers_tcp False)"
    assert "probes 10 ok 6 failed, longest gap" in figures and "decision 1" in figures


def test_a_shortfall_is_shown_and_a_healed_fault_is_not() -> None:
    start = ev(1.0, "fault.start", fault="loss", measured={}, shortfall="no packet dropped")
    assert "SHORTFALL: no packet dropped" in status([start], 0.0)[0]
    healed = [ev(0.5, "host", event="init"), start, ev(2.0, "fault.stop", fault="loss")]
    assert status(healed, 0.0)[0] == "after fault loss"
    assert status([*healed, ev(3.0, "phase", name="verify")], 0.0)[0] == "verify"


def test_a_loss_fault_shows_the_loss_its_calibration_achieved() -> None:
    calibration = {"rate": 0.3, "directions": [{"offered": 500, "dropped": 160}],
                   "offered": 1000, "dropped": 304}
    start = ev(1.0, "fault.start", fault="loss", shortfall="",
               measured={"offloads_left_on": {}, "calibration": calibration})
    assert status([start], 0.0)[0] == "fault loss (calibration: loss 30.4% of 1000 packets)"


def test_a_disk_fill_shows_its_level_as_last_polled() -> None:
    polls = [ev(1.0 + i, "fill", "target", fraction=f, running=3)
             for i, f in enumerate((0.5, 0.81, 0.974))]
    assert "fill target 97% (3 writers)" in status(polls, 0.0)[1]
