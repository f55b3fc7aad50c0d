"""backlog_drain: both directions on a job queue in a replicated PostgreSQL on loopback.

- the configuration under test (fixtures/default.toml: the fixed resolution check, or
  --repro-config) must pass: it declares the incident resolved once the queue's depth
  and oldest age are back in their pre-fault band, and not long after;
- the pre-fix check ("jobs are flowing") must be flagged: it declares resolution with
  the backlog still queued.
"""

from __future__ import annotations

import pytest

from repro.backlog_drain import scenario
from repro.backlog_drain.config import BacklogDrainConfig
from repro.harness.checks import Outcome
from repro.harness.directions import both_directions
from repro.harness.report.results import IncidentResult

pytestmark = [pytest.mark.slow]


def _declared_early(result: IncidentResult, cfg: BacklogDrainConfig) -> None:
    verdict = result.verdict
    assert verdict.outcome is Outcome.FAIL, verdict.describe()
    assert any("jobs still queued" in r for r in verdict.reasons), verdict.describe()
    assert verdict.figures["queued_at_declaration"] >= cfg.min_backlog, verdict.describe()


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "backlog_drain", scenario.run, prefix_check=_declared_early)
