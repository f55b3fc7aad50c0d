"""reboot_blindspot: both directions, on QEMU guests with their own kernel
(repro.harness.directions).

- the configuration under test (fixtures/default.toml or --repro-config; by default
  fixtures/reboot_blindspot/fixed.yml) must be firing on the rebooted node, up again with
  its server process gone, within max_alert_s of Prometheus scraping its new boot;
- the pre-fix rules (`up == 0` for a minute) must be flagged because the alert did not
  page on the rebooted node (not because of the quiet window): if they stop failing, the
  reproduction has gone stale.
"""

from __future__ import annotations

from typing import Any

from repro.harness.directions import both_directions
from repro.harness.report.results import IncidentResult
from repro.reboot_blindspot import scenario


def blind_to_the_reboot(result: IncidentResult, cfg: Any) -> None:
    assert any(f"{cfg.alert} did not page on the rebooted node" in r
               for r in result.verdict.reasons), (
        "the pre-fix rules failed for another reason than missing the reboot\n"
        + result.verdict.describe())
    assert result.verdict.figures.get("down_s") is not None, result.verdict.describe()


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "reboot_blindspot", scenario.run, prefix_check=blind_to_the_reboot)
