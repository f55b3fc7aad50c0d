"""reboot_blindspot: both directions, on QEMU guests with their own kernel
(repro.harness.directions), and one broken variant.

- the configuration under test (fixtures/default.toml or --repro-config; by default
  fixtures/reboot_blindspot/fixed.yml) must be firing on the rebooted node, up again with
  its server process gone, within max_alert_s of Prometheus scraping its new boot;
- the pre-fix rules (`up == 0` for a minute) must be flagged because the alert did not
  page on the rebooted node (not because of the quiet window): if they stop failing, the
  reproduction has gone stale;
- `up == 0` for 10 s (fixtures/reboot_blindspot/down_10s.yml, in the pre-fix direction)
  must be flagged the same way, whatever the reboot's length: on a reboot faster than its
  `for:` it never fires, on a slower one it covers only the outage.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from repro.harness.checks import Outcome
from repro.harness.directions import Pair, both_directions, traced
from repro.harness.incidents import INCIDENTS
from repro.harness.plugin import Session, Settings
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.reboot_blindspot import scenario

DOWN_10S = "reboot_blindspot/down_10s.yml"
# the variant resolves at the first evaluation of the up-again node: 20 s after it is
# scraped again show that as well as 40 s, and keep the suite shorter
VARIANT_MAX_ALERT_S = 20.0


def blind_to_the_reboot(result: IncidentResult, cfg: Any) -> None:
    assert any(f"{cfg.alert} did not page on the rebooted node" in r
               for r in result.verdict.reasons), (
        "the rules failed for another reason than missing the reboot\n"
        + result.verdict.describe())
    assert result.verdict.figures.get("down_s") is not None, result.verdict.describe()


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "reboot_blindspot", scenario.run, prefix_check=blind_to_the_reboot)


@pytest.mark.reboot_blindspot
@pytest.mark.qemu
def test_up_0_for_10s_is_flagged(repro_settings: Settings, repro_run: Run,
                                 repro_results: Session) -> None:
    """A shipped broken variant (runs in the pre-fix direction): not firing on the node that
    is up again with its server gone, however long the reboot took."""
    cfg = repro_settings.with_fixture("reboot_blindspot", "rules", DOWN_10S)
    cfg = Pair(INCIDENTS["reboot_blindspot"]).runnable(
        repro_settings, dataclasses.replace(cfg, max_alert_s=VARIANT_MAX_ALERT_S))
    result = repro_results.judged(lambda again: traced(scenario.run(
        repro_run, cfg, f"up == 0 for 10s{again}", Outcome.FAIL), cfg))
    assert result.verdict.outcome is Outcome.FAIL, (
        f"`up == 0` for 10 s ({DOWN_10S}) was not flagged\n" + result.verdict.describe())
    blind_to_the_reboot(result, cfg)
