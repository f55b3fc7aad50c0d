"""cache_restore: both directions (repro.harness.directions).

- the configuration under test (fixtures/default.toml: one target at a time, every exit
  status checked) must pass: with one target's stream cut half-way, it fails naming it;
- the pre-fix fixture (cache_restore/prefix.sh: every target at once, a bare `wait`) must be
  flagged, by data loss behind its exit 0: if it stops failing, the reproduction has gone
  stale.
"""

from __future__ import annotations

from typing import Any

from repro.cache_restore import scenario
from repro.harness.directions import both_directions
from repro.harness.report.results import IncidentResult


def lost_behind_exit_0(result: IncidentResult, cfg: Any) -> None:
    assert any(r.startswith("data loss: the restore exited 0") for r in result.verdict.reasons), \
        result.verdict.describe()


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "cache_restore", scenario.run, prefix_check=lost_behind_exit_0)
