"""mtu_wedge: both directions (repro.harness.directions).

- the configuration under test (fixtures/default.toml, or --repro-config) must pass;
- the pre-fix fixture (MTU 1400 + the emulated driver failure) must be flagged, by the
  host dropping off the network: if it stops failing, the reproduction has gone stale.

Both again on QEMU guests: test_mtu_wedge_on_qemu.py.
"""

from __future__ import annotations

from typing import Any

from repro.harness.directions import both_directions
from repro.harness.report.results import IncidentResult
from repro.mtu_wedge import scenario


def dropped_off(result: IncidentResult, cfg: Any) -> None:
    assert any("dropped off the network" in r for r in result.verdict.reasons), \
        result.verdict.describe()


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "mtu_wedge", scenario.run, prefix_check=dropped_off)
