"""Shared checker helpers: liveness gaps and reboots."""

from __future__ import annotations

from repro.harness.checks import Outcome, Verdict, liveness_gaps, reboots
from repro.harness.probes.heartbeat import leg
from tests.histories import heartbeat


def test_gap_runs_from_last_alive_to_next_alive():
    (gap,) = liveness_gaps(leg(heartbeat("h", 0, 5, every=0.5, down=(2.0, 3.0)), "tcp"))
    assert (gap.start, gap.end, gap.ongoing) == (1.5, 3.0, False)


def test_gap_still_open_at_end_is_ongoing_until_end():
    (gap,) = liveness_gaps(leg(heartbeat("h", 0, 5, every=0.5, down=(4.0, 99)), "tcp"), end=8.0)
    assert gap.ongoing and gap.start == 3.5 and gap.end == 8.0


def test_gaps_are_per_host():
    samples = heartbeat("a", 0, 4, down=(1, 2)) + heartbeat("b", 0, 4)
    assert {g.host for g in liveness_gaps(samples)} == {"a"}


def test_reboot_detected_from_boot_id():
    (change,) = reboots(heartbeat("h", 0, 4, reboot_at=2.0))
    assert change[0] == "h" and change[2:] == ("boot-a", "boot-b")


def test_fail_wins_over_inconclusive_and_keeps_both_reasons():
    v = Verdict.judge(["gap"], ["fault missed"], {})
    assert v.outcome is Outcome.FAIL and v.reasons == ("gap", "fault missed")


def test_inconclusive_only_when_nothing_failed():
    v = Verdict.judge([], ["fault missed"], {})
    assert v.outcome is Outcome.INCONCLUSIVE and v.reasons == ("fault missed",)
    assert Verdict.judge([], [], {}).ok
