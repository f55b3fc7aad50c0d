"""The reboot_blindspot oracle on hand-written histories: every branch of the verdict."""

from __future__ import annotations

from typing import Any

from repro.harness.checks import Outcome
from repro.harness.history import Event

from ..check import FAULT, TRIGGER, Params, check

H = "repro-ab12-rb-under-test"
P = Params(host=H, alert="ServerDown", max_alert_s=40.0, quiet_s=10.0)
TRIGGER_T, PANIC_T = 20.0, 21.0
B1, B2 = 1796130000.0, 1796130040.0
DOWN = {"alertname": "ServerDown", "reason": "host_down"}
REBOOTED = {"alertname": "ServerDown", "reason": "rebooted"}


def ev(t: float, kind: str, **fields: Any) -> Event:
    return Event(t=round(t, 3), kind=kind, host=H, fields=fields)


def alert(t: float, state: str, labels: dict[str, str] | None = None,
          since: float | None = None, name: str = "ServerDown") -> Event:
    return ev(t, "alert", alert=name, state=state, labels=labels or DOWN,
              active_since=since if since is not None else (t if state != "inactive" else None))


def history(*alerts: Event, down: float = 12.0, back: float = 15.0, end: float | None = None,
            console_boot: bool = True, new_boot_id: bool = True, panic: bool = True,
            shortfall: str = "", healthy_from: float = 5.0, watcher_gap: tuple[float, float]
            | None = None, frozen_eval: bool = False, server_again: float | None = None
            ) -> list[Event]:
    """A guest healthy from `healthy_from`, the crash trigger at TRIGGER_T and its panic at
    PANIC_T; port 22 back `down` s and the exporter scraped on its new boot `back` s after the
    panic, its server heartbeat stale from then on (fresh again `server_again` s after the
    panic, if given); the watcher every 0.5 s until `end` (by default max_alert_s and a few
    seconds after the new boot is scraped; silent inside `watcher_gap`)."""
    end = PANIC_T + back + P.max_alert_s + 3.0 if end is None else end
    events = [ev(0.0, "host", event="ready"), ev(TRIGGER_T, "op", name=TRIGGER)]
    t = 1.0
    while t <= end:
        gone = panic and PANIC_T - 0.5 <= t < PANIC_T + back
        after = panic and t >= PANIC_T + back
        fresh = server_again is not None and t >= PANIC_T + server_again
        if not (watcher_gap and watcher_gap[0] < t < watcher_gap[1]):
            up = None if t < healthy_from else (0.0 if gone else 1.0)
            events.append(ev(t, "monitor", ok=True, up=up,
                             last_eval=20.0 if frozen_eval and t > 20 else round(t - 0.3, 2),
                             boot_time=None if gone or up is None else (B2 if after else B1),
                             hb_age=None if gone or up is None else
                             (t - PANIC_T + 2 if after and not fresh else 1.0)))
        ok = not (panic and PANIC_T <= t < PANIC_T + down)
        events.append(ev(t + 0.01, "probe", leg="tcp", ok=ok, tcp_ok=ok))
        boot = "boot-b" if panic and new_boot_id and t >= PANIC_T + down else "boot-a"
        events.append(ev(t + 0.02, "probe", leg="ssh", ok=ok, ssh_ok=ok,
                         boot_id=boot if ok else None))
        t += 0.5
    if panic:
        events += [ev(PANIC_T, "kernel", pattern="panic", line="Kernel panic - not syncing"),
                   ev(PANIC_T + 0.05, "fault.start", fault=FAULT, params={"trigger": "c"},
                      measured={}, shortfall=shortfall),
                   ev(end, "fault.stop", fault=FAULT)]
    if panic and console_boot:
        events.append(ev(PANIC_T + 6.0, "host", event="boot", source="console"))
    return sorted([*events, *alerts], key=lambda e: e.t)


def fixed_history(*more: Event, **kw: Any) -> list[Event]:
    """Pending while the node is down (`up == 0` for 1m), then the reboot rule fires as the
    new boot is scraped (and `more` alert changes)."""
    return history(alert(PANIC_T + 1.5, "pending"), alert(PANIC_T + 15.2, "inactive"),
                   alert(PANIC_T + 15.2, "firing", REBOOTED), *more, **kw)


def prefix_history(**kw: Any) -> list[Event]:
    return history(alert(PANIC_T + 1.5, "pending"), alert(PANIC_T + 15.2, "inactive"), **kw)


def test_an_alert_that_fires_soon_after_the_reboot_passes() -> None:
    v = check(fixed_history(), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["alert_after_s"] == 15.2
    assert v.figures["paged_after_back_s"] == 0.2
    assert v.figures["down_s"] == 12.0
    assert v.figures["scraped_again_after_s"] == 15.0
    assert v.figures["alert_labels"] == "reason=rebooted"
    assert v.figures["fired_after_s"] == {"rebooted": 15.2}
    assert v.figures["quiet_window_s"] == 15.0


def test_an_alert_that_never_fires_after_a_fast_reboot_is_the_incident() -> None:
    v = check(prefix_history(), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith("ServerDown did not page on the rebooted node")
    assert "in the 40 s (max_alert_s) after Prometheus scraped that new boot" in v.reasons[0]
    assert "was down 12.0 s" in v.reasons[0]
    assert ("went pending 1.5 s after the panic (reason=host_down) and cleared +0.2 s from "
            "Prometheus scraping the new boot") in v.reasons[0]
    assert v.figures["alert_after_s"] is None


def test_an_alert_that_fires_after_the_deadline_fails() -> None:
    v = check(history(alert(PANIC_T + 15.0 + 43.0, "firing", REBOOTED), end=PANIC_T + 62.0), P)
    assert v.outcome is Outcome.FAIL
    assert "it fired only 43.0 s after Prometheus scraped the rebooted node" in v.reasons[0]


def test_up_0_for_10s_on_a_fast_reboot_never_fires() -> None:
    """`up == 0` for 10 s; the node down 8 s: pending, then cleared as the node answered."""
    v = check(history(alert(PANIC_T + 1.5, "pending"), alert(PANIC_T + 9.2, "inactive"),
                      down=7.0, back=9.0), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith("ServerDown did not page on the rebooted node")
    assert v.figures["first_fired_after_s"] is None


def test_up_0_for_10s_on_a_slow_reboot_covers_only_the_outage() -> None:
    """The same rule; the reboot outlasts its `for:` (TCG under load): it fires during the
    outage and resolves at the first evaluation of the up-again node, whose server is gone."""
    v = check(history(alert(PANIC_T + 1.5, "pending"),
                      alert(PANIC_T + 11.5, "firing", since=PANIC_T + 1.5),
                      alert(PANIC_T + 25.2, "inactive"), down=23.0, back=25.0), P)
    assert v.outcome is Outcome.FAIL
    assert ("it fired 11.5 s after the panic (reason=host_down) and cleared +0.2 s from "
            "Prometheus scraping the new boot, an alert that covered only the outage"
            ) in v.reasons[0]
    assert v.figures["first_fired_after_s"] == 11.5
    assert v.figures["alert_after_s"] is None


def test_a_firing_left_over_from_the_outage_is_not_a_page() -> None:
    """Rounds just after the node is back still show the outage's firing: the rules had not
    evaluated the up-again node yet (its `last_eval` is not an interval past it)."""
    v = check(history(alert(PANIC_T + 11.5, "firing", since=PANIC_T + 1.5),
                      alert(PANIC_T + 26.0, "inactive"), down=23.0, back=25.0), P)
    assert v.outcome is Outcome.FAIL
    assert "covered only the outage" in v.reasons[0]


def test_an_outage_alert_still_firing_on_the_up_again_node_pages() -> None:
    """An alert that fired in the outage and is still firing, evaluated on the node that is
    up with its server gone, says the truth there (`keep_firing_for`, say)."""
    v = check(history(alert(PANIC_T + 11.5, "firing", since=PANIC_T + 1.5),
                      down=23.0, back=25.0), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["paged_after_back_s"] == -13.5


def test_the_heartbeat_rule_after_a_slow_reboot_has_its_for() -> None:
    """The postmortem's fix alone (heartbeat stale, `for: 5s`) on a 30 s reboot fires 40 s
    after the panic: the deadline counts from the node scraped again, not from the panic."""
    stale = {"alertname": "ServerDown", "reason": "heartbeat_stale"}
    v = check(history(alert(PANIC_T + 33.2, "pending", stale),
                      alert(PANIC_T + 40.2, "firing", stale, since=PANIC_T + 33.2),
                      down=30.0, back=33.0), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["alert_after_s"] == 40.2
    assert v.figures["paged_after_back_s"] == 7.2


def test_a_rule_that_always_fires_fails_in_the_quiet_window() -> None:
    v = check(history(alert(2.0, "firing", REBOOTED, since=1.0)), P)
    assert v.outcome is Outcome.FAIL
    assert "was firing during the quiet control window" in v.reasons[0]


def test_a_firing_entered_during_the_quiet_window_fails_too() -> None:
    v = check(fixed_history(alert(12.0, "firing", {"reason": "other"})), P)
    assert v.outcome is Outcome.FAIL
    assert "was firing during the quiet control window" in v.reasons[0]


def test_an_alert_pending_since_before_the_crash_does_not_count_as_paging() -> None:
    """`vector(1)` with `for: 25s`: pending through the quiet window, firing after the panic."""
    v = check(history(alert(2.0, "pending", REBOOTED, since=2.0),
                      alert(27.0, "firing", REBOOTED, since=2.0)), P)
    assert v.outcome is Outcome.FAIL
    assert "had held since 18.0 s before the crash was triggered" in v.reasons[0]


def test_a_scrape_missed_in_the_quiet_window_is_no_failure() -> None:
    v = check(fixed_history(alert(9.0, "pending"), alert(10.0, "inactive")), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["quiet_pending"] == 1


def test_a_pending_that_began_with_the_trigger_may_fire() -> None:
    """The trigger's ssh command can make the guest miss a scrape before the kernel dies."""
    v = check(history(alert(TRIGGER_T + 0.6, "pending", since=TRIGGER_T + 0.5),
                      alert(PANIC_T + 5.0, "firing", since=TRIGGER_T + 0.5)), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["alert_after_s"] == 5.0


def test_other_alerts_are_not_the_named_one() -> None:
    v = check(history(alert(2.0, "firing", name="Watchdog"),
                      alert(PANIC_T + 16.0, "firing", REBOOTED, name="SomethingElse")), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith("ServerDown did not page")


def test_no_crash_is_inconclusive() -> None:
    v = check(history(panic=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("never crashed" in r for r in v.reasons)


def test_a_crash_that_did_not_take_is_inconclusive() -> None:
    v = check(fixed_history(shortfall="no panic seen within 15 s of the trigger"), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("the kernel panic did not take" in r for r in v.reasons)


def test_a_reboot_without_a_boot_banner_is_not_confirmed() -> None:
    v = check(fixed_history(console_boot=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("no second boot banner" in r for r in v.reasons)


def test_a_reboot_without_a_new_boot_id_is_not_confirmed() -> None:
    v = check(fixed_history(new_boot_id=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("no new boot id after the panic" in r for r in v.reasons)


def test_a_new_boot_id_on_the_console_confirms_the_reboot() -> None:
    """The guest's init prints its boot id; the heartbeat's fresh login can lag it."""
    v = check(fixed_history(ev(PANIC_T + 11.0, "host", event="guest_ready", boot_id="boot-b"),
                            new_boot_id=False), P)
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["new_boot_id_after_s"] == 11.0


def test_the_old_boot_id_on_the_console_is_no_reboot() -> None:
    v = check(fixed_history(ev(PANIC_T + 11.0, "host", event="guest_ready", boot_id="boot-a"),
                            new_boot_id=False), P)
    assert v.outcome is Outcome.INCONCLUSIVE


def test_a_slow_reboot_is_judged_too() -> None:
    v = check(prefix_history(down=45.0, back=47.0), P)
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith("ServerDown did not page on the rebooted node")
    assert "(47.0 s after the panic)" in v.reasons[0]


def test_a_node_never_scraped_again_is_inconclusive() -> None:
    v = check(prefix_history(back=200.0, down=45.0, end=120.0), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("never scraped the rebooted node" in r for r in v.reasons)


def test_observation_that_ends_before_the_deadline_is_inconclusive() -> None:
    v = check(prefix_history(end=PANIC_T + 50.0), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("before the max_alert_s (40 s) deadline" in r for r in v.reasons)


def test_a_server_back_before_the_deadline_ends_the_state_under_judgement() -> None:
    v = check(prefix_history(server_again=30.0), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("heartbeat was fresh again 15.0 s after" in r for r in v.reasons)


def test_a_page_before_the_server_came_back_counts() -> None:
    v = check(fixed_history(server_again=30.0), P)
    assert v.outcome is Outcome.PASS, v.reasons


def test_a_starved_watcher_makes_a_silent_alert_inconclusive() -> None:
    v = check(prefix_history(watcher_gap=(50.0, 58.0)), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("alert watcher went 8.0 s without an answer" in r for r in v.reasons)


def test_a_stalled_evaluator_makes_a_silent_alert_inconclusive() -> None:
    v = check(prefix_history(frozen_eval=True), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("without an evaluation" in r for r in v.reasons)


def test_a_quiet_window_too_short_is_inconclusive() -> None:
    v = check(fixed_history(healthy_from=15.0), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("quiet control window lasted 5.0 s" in r for r in v.reasons)


def test_a_quiet_window_that_never_began_is_inconclusive() -> None:
    v = check(fixed_history(healthy_from=30.0), P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("control window never began" in r for r in v.reasons)


def test_a_failure_outranks_an_unconfirmed_reboot() -> None:
    v = check(history(alert(2.0, "firing", since=1.0), console_boot=False), P)
    assert v.outcome is Outcome.FAIL
    assert any("no second boot banner" in r for r in v.reasons[1:])


def test_a_quiet_window_the_monitoring_could_not_see_is_inconclusive() -> None:
    """Scrapes timing out on a loaded machine: `up == 0` for a minute fires with the guest
    up. That is the observer, not the rule."""
    events = [e if not (e.kind == "monitor" and 6.0 <= e.t < 19.0) else
              Event(e.t, e.kind, e.host, e.fields | {"up": 0.0, "boot_time": None,
                                                      "hb_age": None})
              for e in fixed_history(alert(18.0, "firing", since=6.0))]
    v = check(events, P)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any("could not scrape the node for 13.5 s" in r and "(ServerDown fired in it)" in r
               for r in v.reasons)


def test_a_firing_from_before_the_node_was_up_that_resolves_at_once_is_no_failure() -> None:
    """`up == 0 for 1m` fires while the exporter is still starting on a starved guest, and
    resolves as soon as the node is scraped: the window's rules had not settled."""
    v = check(fixed_history(alert(4.0, "firing", since=1.0), alert(6.5, "inactive")), P)
    assert v.outcome is Outcome.PASS, v.reasons


def test_a_firing_from_before_the_node_was_up_that_stays_fails() -> None:
    v = check(fixed_history(alert(4.0, "firing", {"reason": "always"}, since=1.0)), P)
    assert v.outcome is Outcome.FAIL
    assert "firing since 16.0 s before the crash trigger" in v.reasons[0]
