"""container_awareness: both directions (repro.harness.directions).

- the configuration under test (fixtures/default.toml: container detection off, pools sized
  by hand) must pass;
- the pre-fix fixture (container_awareness/prefix.options: container support on, pools
  sized from the detected processors) must be flagged, by the throughput it delivers: if it
  stops failing, the reproduction has gone stale.
"""

from __future__ import annotations

from typing import Any

from repro.container_awareness import scenario
from repro.harness.directions import both_directions
from repro.harness.report.results import IncidentResult


def throughput_constrained(result: IncidentResult, cfg: Any) -> None:
    assert any("of the offered load" in r for r in result.verdict.reasons), \
        result.verdict.describe()


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "container_awareness", scenario.run, prefix_check=throughput_constrained)
