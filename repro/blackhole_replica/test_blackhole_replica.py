"""blackhole_replica: both directions on a replicated PostgreSQL on loopback.

- the configuration under test (fixtures/default.toml: the fixed caller, or
  --repro-config) must pass: p99 and success within limits while replica1 is frozen,
  no pile-up, /health answering, back to steady state after the thaw;
- the pre-fix caller (round-robin, no deadline) must be flagged, by its latency and
  its failed requests during the freeze.
"""

from __future__ import annotations

import pytest

from repro.blackhole_replica import scenario
from repro.blackhole_replica.config import BlackholeReplicaConfig
from repro.harness.checks import Outcome
from repro.harness.directions import both_directions
from repro.harness.report.results import IncidentResult

pytestmark = [pytest.mark.slow]


def _backed_up(result: IncidentResult, cfg: BlackholeReplicaConfig) -> None:
    verdict = result.verdict
    assert verdict.outcome is Outcome.FAIL, verdict.describe()
    assert verdict.figures["p99_ms"] > cfg.max_p99_ms, verdict.describe()
    assert any("p99 latency" in r for r in verdict.reasons), verdict.describe()


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "blackhole_replica", scenario.run, prefix_check=_backed_up)
