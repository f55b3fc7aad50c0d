"""The shared checker rules and their composition, on hand-written histories."""

from __future__ import annotations

from repro.harness.checks import Gap, Outcome, Reboot
from repro.harness.probes.heartbeat import leg
from repro.harness.rules import (
    Findings,
    compose,
    fail,
    fault_events,
    fault_took_effect,
    gaps_over,
    given,
    inconclusive,
    lost_gaps,
    merge,
    missed_in_a_row,
    observer_starved,
    over_budget,
    rebooted,
    stalls_over,
)
from tests.histories import fault_window, heartbeat

H = "repro-ab12-target"


def since_fault(t: float) -> str:
    return f"{t - 1.0:+.2f} s after the fault began"


# -- composition ----------------------------------------------------------------------------

def test_compose_keeps_the_order_of_reasons_and_figures_and_fail_wins() -> None:
    v = compose(Findings(figures={"a": 1, "b": 2}), inconclusive("fault missed"),
                fail("first"), Findings(failures=["second"], figures={"b": 3, "c": 4}))
    assert v.outcome is Outcome.FAIL
    assert v.reasons == ("first", "second", "fault missed")  # failures first, each in order
    assert list(v.figures.items()) == [("a", 1), ("b", 3), ("c", 4)]  # a later key replaces


def test_compose_is_inconclusive_only_when_nothing_failed_and_passes_on_nothing() -> None:
    v = compose(Findings(figures={"x": 1}), inconclusive("one"), inconclusive("two"))
    assert v.outcome is Outcome.INCONCLUSIVE and v.reasons == ("one", "two")
    assert compose().ok and compose(Findings(figures={"x": 1})).figures == {"x": 1}


def test_merge_leaves_its_parts_untouched() -> None:
    a, b = fail("a"), inconclusive("b")
    m = merge(a, b)
    m.failures.append("more")
    assert a.failures == ["a"] and b.inconclusive == ["b"] and not b.failed and m.failed


# -- fault took effect ----------------------------------------------------------------------

def test_a_fault_that_never_started_is_inconclusive() -> None:
    f = fault_took_effect([], "ssh_flood", never="the flood never started")
    assert f.inconclusive == ["the flood never started"] and not f.failed


def test_a_fault_started_on_another_host_or_another_fault_does_not_count() -> None:
    events = fault_window("ssh_flood", "other", 1.0) + fault_window("loss", H, 1.0)
    f = fault_took_effect(events, "ssh_flood", host=H, never="never")
    assert f.inconclusive == ["never"]
    assert fault_took_effect(events, "ssh_flood", never="never").inconclusive == []


def test_the_latest_starts_shortfall_is_inconclusive_with_its_label() -> None:
    events = fault_window("loss", H, 1.0, 5.0) + fault_window("loss", H, 6.0, shortfall="1 %")
    f = fault_took_effect(events, "loss", never="never", shortfall="loss calibration")
    assert f.inconclusive == ["loss calibration: 1 %"]
    recalibrated = fault_window("loss", H, 1.0, 5.0, shortfall="1 %") + fault_window("loss", H, 6.0)
    assert fault_took_effect(recalibrated, "loss", never="never",
                             shortfall="loss calibration") == Findings()


def test_a_shortfall_is_left_to_the_incident_without_a_label() -> None:
    events = fault_window("ssh_flood", H, 1.0, shortfall="only 2/3 streams logged in")
    assert fault_took_effect(events, "ssh_flood", never="never") == Findings()


def test_fault_events_select_kind_fault_and_host() -> None:
    events = fault_window("loss", H, 1.0, 5.0) + fault_window("loss", "b", 2.0, 6.0)
    assert [e.t for e in fault_events(events, "stop", "loss")] == [5.0, 6.0]
    assert [e.t for e in fault_events(events, "start", "loss", H)] == [1.0]
    assert fault_events(events, "start", "mtu") == []


# -- liveness gaps --------------------------------------------------------------------------

def test_a_gap_over_the_limit_fails_once_saying_how_long_and_when() -> None:
    f = gaps_over(leg(heartbeat(H, 0, 10, every=0.5, down=(3.0, 6.0)), "tcp"), 2.0,
                  since=since_fault)
    assert f.failures == [f"{H} did not answer for 3.50 s (limit 2 s) +1.50 s after the "
                          "fault began"]


def test_gaps_within_the_limit_pass_and_an_ongoing_gap_runs_to_the_end() -> None:
    samples = leg(heartbeat(H, 0, 10, every=0.5, down=(3.0, 4.0)), "tcp")
    assert gaps_over(samples, 2.0) == Findings()
    (reason,) = gaps_over(leg(heartbeat(H, 0, 5, every=0.5, down=(4.0, 99)), "tcp"), 2.0,
                          end=8.0).failures
    assert "for 4.50 s" in reason and reason.endswith("still down when observation ended")


def test_gaps_are_judged_per_host_and_worded_by_the_incident() -> None:
    samples = leg(heartbeat("a", 0, 10, down=(2, 6)) + heartbeat("b", 0, 10), "tcp")
    f = gaps_over(samples, 2.0, say=lambda g: f"{g.host} gone {g.length:.1f} s")
    assert f.failures == ["a gone 4.2 s"]


def test_two_misses_in_a_row_are_not_lost_three_are() -> None:
    slow = leg(heartbeat(H, 0, 30, every=1.0, down=(10.5, 12.5)), "tcp")
    assert lost_gaps(slow, 3) == [] and missed_in_a_row(slow, 3) == Findings()
    dead = leg(heartbeat(H, 0, 30, every=1.0, down=(10.5, 13.5)), "tcp")
    ((gap, n),) = lost_gaps(dead, 3)
    assert n == 3 and (gap.start, gap.end) == (10.0, 14.0)
    assert missed_in_a_row(dead, 3).failures == [
        "heartbeat lost the host for 4.00 s (3 missed samples in a row, limit 2) at 10.00 s"]


def test_misses_are_counted_on_the_gaps_own_host() -> None:
    samples = leg(heartbeat("a", 0, 30, every=1.0, down=(10.5, 12.5))
                  + heartbeat("b", 0, 30, every=1.0, down=(10.5, 11.5)), "tcp")
    assert lost_gaps(samples, 3) == []


# -- reboots --------------------------------------------------------------------------------

def test_a_changed_boot_id_fails_naming_both_ids() -> None:
    f = rebooted(leg(heartbeat(H, 0, 4, reboot_at=2.0), "ssh"), since=since_fault)
    assert f.failures == [f"{H} rebooted: boot id boot-a -> boot-b, seen by the heartbeat "
                          "+1.01 s after the fault began"]
    assert rebooted(heartbeat(H, 0, 4)) == Findings()


def test_a_reboot_is_worded_by_the_incident_when_it_asks() -> None:
    def say(r: Reboot) -> str:
        return f"{r.host} booted again at {r.t:.2f}"
    assert rebooted(heartbeat(H, 0, 4, reboot_at=2.0), say=say).failures == [
        f"{H} booted again at 2.01"]


# -- observer starved -----------------------------------------------------------------------

def test_an_observer_silent_past_the_limit_is_inconclusive() -> None:
    samples = [e for e in leg(heartbeat(H, 0, 10), "tcp") if not 3.0 < e.t < 6.0]
    f = observer_starved(samples, 2.0)
    assert f.inconclusive == ["the observer was starved: 3.00 s without a heartbeat sample "
                              "(limit 2.0 s), so a gap could have gone unseen"]
    assert not f.failed


def test_an_observer_that_kept_sampling_proves_its_part() -> None:
    assert observer_starved(leg(heartbeat(H, 0, 10), "tcp"), 2.0) == Findings()
    assert observer_starved([], 2.0) == Findings()


# -- stalls ---------------------------------------------------------------------------------

def test_a_stall_over_the_limit_fails_unless_an_explained_span_overlaps_it() -> None:
    freeze = Gap(H, 2.0, 25.0, False)
    f = stalls_over([freeze, Gap(H, 26.0, 27.0, False)], 10.0, since=since_fault)
    assert f.failures == ["no progress for 23.00 s (limit 10 s) +1.00 s after the fault began"]
    outage = Gap(H, 20.0, 30.0, True)
    assert stalls_over([freeze], 10.0, explained=[outage]) == Findings()
    assert stalls_over([freeze], 10.0, explained=[Gap(H, 26.0, 30.0, True)]).failed


def test_a_stall_is_worded_by_the_incident_when_it_asks() -> None:
    f = stalls_over([Gap(H, 2.0, 25.0, False)], 10.0,
                    say=lambda g: f"{g.host} froze for {g.length:.0f} s")
    assert f.failures == [f"{H} froze for 23 s"]


# -- budget ---------------------------------------------------------------------------------

def test_over_budget_fails_at_the_budget_it_passes() -> None:
    assert over_budget("the step", 75.0, 60.0, " (exit 1)").failures == [
        "the step ran 75 s, over its 60 s budget (exit 1)"]
    assert over_budget("the step", 60.0, 60.0) == Findings()


# -- steady state ---------------------------------------------------------------------------

def test_band_of_widens_by_slack_and_is_never_narrower_than_the_tolerance() -> None:
    from repro.harness.rules import Band, band_of

    b = band_of([2.0, 4.0], slack=1.0, lower=False)
    assert b.holds(5.0) and not b.holds(5.1) and b.holds(-100) and str(b) == "<= 5"
    assert band_of([0.99, 1.0], slack=0.0, upper=False, at_least=Band(0.95)).low == 0.95
    assert band_of([], at_least=Band(high=3)).high == 3
    assert band_of([10.0], rel=0.5) == Band(5.0, 15.0)


def _series(values: list[tuple[float, float]]) -> list[tuple[float, dict[str, float]]]:
    return [(t, {"depth": v}) for t, v in values]


def test_steady_state_is_the_first_in_band_stretch_that_held() -> None:
    from repro.harness.rules import Band, recovered_within, steady_state

    samples = _series([(t / 2, v) for t, v in enumerate(
        [1, 1, 1, 1, 50, 40, 30, 2, 9, 2, 1, 1, 1, 1, 1, 1, 1, 1, 20, 1])])
    s = steady_state(samples, healed_t=2.0, hold_s=2.0, bands={"depth": Band(high=5)})
    # 2 at 3.5 s is in band but 9 at 4.0 s breaks it; from 4.5 s it holds 2 s and more
    assert s.returned_t == 4.5 and s.recovery_s == 2.5
    assert s.relapsed_t == 9.0  # the blip later is a relapse, not a later return
    assert recovered_within(s, 3.0).failures == []
    assert "took 2.50 s" in recovered_within(s, 2.0).failures[0]


def test_steady_state_that_never_held_long_enough_fails_saying_so() -> None:
    from repro.harness.rules import Band, recovered_within, steady_state

    samples = _series([(0, 1), (1, 50), (2, 30), (3, 2), (3.5, 2)])
    s = steady_state(samples, healed_t=1.0, hold_s=2.0, bands={"depth": Band(high=5)},
                     end_t=4.0)
    assert s.returned_t is None and s.in_band_since == 3.0
    reason = recovered_within(s, None, what="the queue").failures[0]
    assert reason.startswith("the queue had not returned to its pre-fault band (depth <= 5)")
    assert "in band since +2.00 s, not yet for 2 s" in reason
    never = steady_state(_series([(2, 50)]), healed_t=1.0, hold_s=1.0,
                         bands={"depth": Band(high=5)}, end_t=3.0)
    assert "out of band at the end: depth" in recovered_within(never, 5.0).failures[0]


def test_steady_before_needs_baseline_samples_within_the_tolerance() -> None:
    from repro.harness.rules import Band, steady_before

    samples = _series([(0.5, 1), (1.0, 1), (1.5, 1), (3.0, 99)])
    assert steady_before(samples, fault_t=2.0, min_samples=3).inconclusive == []
    few = steady_before(samples, fault_t=1.2, min_samples=3, what="the queue")
    assert "2 samples of the queue (at least 3)" in few.inconclusive[0]
    off = steady_before(samples, fault_t=4.0, min_samples=3, tolerance={"depth": Band(high=10)})
    assert "depth 99 (not <= 10) at 3.00 s" in off.inconclusive[0]


def test_freezes_and_observed_time() -> None:
    from repro.harness.rules import freezes, observed_s, percentile
    from tests.histories import ev

    ticks = [ev(t, "tick") for t in (0.0, 0.1, 0.2, 1.5, 1.6)]
    assert freezes(ticks, 0.5) == [(0.2, 1.5)]
    assert round(observed_s(0.0, 2.0, [(0.2, 1.5)]), 3) == 0.7
    assert percentile([5, 1, 4, 2, 3], 50) == 3 and percentile([], 99) == 0.0


def test_given_drops_the_dependent_failures_when_the_fault_did_not_take() -> None:
    nobody_took_over = Findings(failures=["cluster static"], figures={"static_s": 9.0})
    v = given(inconclusive("the leader was never killed"), nobody_took_over).verdict()
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.reasons == ("the leader was never killed",)
    assert v.figures == {"static_s": 9.0}


def test_given_judges_the_dependent_rules_once_the_fault_took() -> None:
    v = given(Findings(), Findings(failures=["cluster static"])).verdict()
    assert v.outcome is Outcome.FAIL and v.reasons == ("cluster static",)
