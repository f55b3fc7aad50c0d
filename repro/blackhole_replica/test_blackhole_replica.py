"""blackhole_replica: both directions on a replicated PostgreSQL on loopback, and a variant.

- the configuration under test (fixtures/default.toml: the fixed caller, or
  --repro-config) must pass: p99 and success within limits while replica1 is frozen,
  no pile-up, /health answering, back to steady state after the thaw, and replica1
  serving the caller's reads again (by its own counters) within max_back_s;
- the pre-fix caller (round-robin, no deadline) must be flagged, by its latency and
  its failed requests during the freeze;
- a shipped broken caller (broken_never_back.py: fails over, never takes replica1 back;
  runs in the pre-fix direction) must be flagged by replica1's own counters, although
  its requests stay fast and successful.
"""

from __future__ import annotations

import pytest

from repro.blackhole_replica import scenario
from repro.blackhole_replica.config import BlackholeReplicaConfig
from repro.harness.checks import Outcome
from repro.harness.directions import Pair, both_directions, traced
from repro.harness.incidents import INCIDENTS
from repro.harness.plugin import Session, Settings
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run

pytestmark = [pytest.mark.slow]
NEVER_BACK = "blackhole_replica/broken_never_back.py"


def _backed_up(result: IncidentResult, cfg: BlackholeReplicaConfig) -> None:
    verdict = result.verdict
    assert verdict.outcome is Outcome.FAIL, verdict.describe()
    assert verdict.figures["p99_ms"] > cfg.max_p99_ms, verdict.describe()
    assert any("p99 latency" in r for r in verdict.reasons), verdict.describe()


def _served_again(result: IncidentResult, cfg: BlackholeReplicaConfig) -> None:
    back = result.verdict.figures["served_back_s"]
    assert back is not None and back <= cfg.max_back_s, result.verdict.describe()


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "blackhole_replica", scenario.run, prefix_check=_backed_up,
    under_test_check=_served_again)


@pytest.mark.blackhole_replica
def test_caller_that_never_takes_the_replica_back_is_flagged(
        repro_settings: Settings, repro_run: Run, repro_results: Session) -> None:
    """Fast and successful throughout, and replica1 never serves it again: flagged by the
    replica's own counters alone."""
    cfg = repro_settings.with_fixture("blackhole_replica", "caller", NEVER_BACK)
    cfg = Pair(INCIDENTS["blackhole_replica"]).runnable(repro_settings, cfg)
    result = repro_results.judged(lambda again: traced(scenario.run(
        repro_run, cfg, f"never takes the replica back{again}", Outcome.FAIL), cfg))
    verdict = result.verdict
    assert verdict.outcome is Outcome.FAIL, (
        f"the caller that never takes replica1 back ({NEVER_BACK}) was not flagged\n"
        + verdict.describe())
    assert any(r.startswith("replica1 did not serve the caller's reads again")
               for r in verdict.reasons), \
        verdict.describe()
    assert verdict.figures["p99_ms"] <= cfg.max_p99_ms, verdict.describe()
