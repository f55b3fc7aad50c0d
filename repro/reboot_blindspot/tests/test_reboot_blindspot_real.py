"""The reboot_blindspot oracle on histories recorded by real runs (a TCG guest, Prometheus
2.42 on the runner, this 2-core machine at load average 13-24 from other engineers' runs;
series and marks left out: the oracle does not read them).

histories/: `fixed_slow_reboot` (fixed.yml: down 34.9 s, scraped again 40.4 s after the
panic, `rebooted` firing there: the deadline counted from the panic had made it
inconclusive), `prefix` (prefix.yml: down 16.3 s, pending in the outage and cleared when
the node answered), `down_10s_slow_reboot` (down_10s.yml with max_alert_s 20: down 32.7 s,
fired 12.6 s after the panic, in the outage, and cleared 0.5 s after the node was scraped
again; the oracle as it was, one firing within max_alert_s of the panic, passed it at 40 s),
`down_10s_reboot_15s` (the same at load 6-12: down 14.6 s, fired 12.3 s after the panic,
cleared 0.5 s after the node was scraped again; the oracle as it was passed it at 20 s),
`heartbeat_only_slow_reboot` (heartbeat_only.yml, the postmortem's fix alone: down 29.5 s,
scraped again 35.4 s after the panic, firing 5.6 s later after its `for: 5s`, 41.1 s after
the panic: the oracle as it was failed it, "it fired only 41.1 s after the panic").
"""

from __future__ import annotations

from pathlib import Path

from repro.harness.checks import Outcome
from repro.harness.history import Event, load

from ..check import Params, check

HERE = Path(__file__).parent / "histories"


def judged(name: str, max_alert_s: float = 40.0) -> tuple[list[Event], Params]:
    events = load(HERE / f"{name}.jsonl")
    host = next(e.host for e in events if e.kind == "monitor")
    return events, Params(host=host, alert="ServerDown", max_alert_s=max_alert_s, quiet_s=10.0)


def test_the_fixed_rules_page_on_a_slow_reboot() -> None:
    v = check(*judged("fixed_slow_reboot"))
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["down_s"] == 34.9
    assert v.figures["alert_after_s"] == 40.4
    assert v.figures["paged_after_back_s"] == 0.0
    assert "reason=rebooted" in v.figures["alert_labels"]


def test_the_heartbeat_rule_alone_has_its_for_after_a_slow_reboot() -> None:
    v = check(*judged("heartbeat_only_slow_reboot"))
    assert v.outcome is Outcome.PASS, v.reasons
    assert v.figures["down_s"] == 29.5
    assert v.figures["scraped_again_after_s"] == 35.4
    assert v.figures["alert_after_s"] == 41.1
    assert v.figures["paged_after_back_s"] == 5.6
    assert "reason=heartbeat_stale" in v.figures["alert_labels"]


def test_the_prefix_rules_are_blind_to_the_reboot() -> None:
    v = check(*judged("prefix"))
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith("ServerDown did not page on the rebooted node")
    assert "went pending 1.8 s after the panic" in v.reasons[0]


def test_up_0_for_10s_covered_only_the_outage() -> None:
    v = check(*judged("down_10s_slow_reboot", max_alert_s=20.0))
    assert v.outcome is Outcome.FAIL
    assert "fired 12.6 s after the panic" in v.reasons[0]
    assert "an alert that covered only the outage" in v.reasons[0]
    assert v.figures["first_fired_after_s"] == 12.6
    assert v.figures["alert_after_s"] is None


def test_up_0_for_10s_on_a_15_s_reboot_covered_only_the_outage() -> None:
    v = check(*judged("down_10s_reboot_15s", max_alert_s=20.0))
    assert v.outcome is Outcome.FAIL
    assert "fired 12.3 s after the panic" in v.reasons[0]
    assert "cleared +0.5 s from Prometheus scraping the new boot" in v.reasons[0]
    assert v.figures["down_s"] == 14.6


def test_without_its_firing_the_fixed_run_stopped_too_early_to_judge() -> None:
    """The fixed run with its firing taken out: the run stopped observing once paged, 3 s
    after the node was back, so a missing page there proves nothing."""
    events, p = judged("fixed_slow_reboot")
    kept = [e for e in events if not (e.kind == "alert" and e.get("state") == "firing")]
    v = check(kept, p)
    assert v.outcome is Outcome.INCONCLUSIVE
    assert any(r.startswith("observation ended") for r in v.reasons), v.reasons
