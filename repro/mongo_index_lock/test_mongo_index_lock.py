"""mongo_index_lock: both directions, on the configured database.

- the configuration under test (fixtures/default.toml: the fixed start-up, or
  --repro-config) must pass: no stall, p99 within bounds;
- the pre-fix fixture (every instance declares every index) must be flagged
  with the stall it caused; if it stops failing, the reproduction has gone
  stale, which is a finding.
Both run on PostgreSQL by default (db = "postgresql"), and there they always
run: a missing PostgreSQL is a missing prerequisite, a failure, never a skip.
The shipped fixtures also run on MongoDB (mongod from PATH, $REPRO_MONGODB_URL,
or the configured mongodb target). The one skip is MongoDB with no server to
be had (db = "mongodb" with no mongod and no URI, or the extra MongoDB runs on
a machine without one): that run is reported as *not run*, with the reason
(`scenario.not_run_reason`); a mongodb:// URI that does not answer fails.
"""

from __future__ import annotations

import dataclasses

import pytest

from repro.harness.checks import Outcome
from repro.harness.directions import both_directions
from repro.harness.plugin import Session, Settings
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.mongo_index_lock import scenario
from repro.mongo_index_lock.config import MongoIndexLockConfig

pytestmark = [pytest.mark.slow]
INCIDENT = "mongo_index_lock"


def _unless_runnable(cfg: MongoIndexLockConfig, asked_by: str) -> None:
    """The only skip here: MongoDB asked for and no server to be had ("not run")."""
    reason = scenario.not_run_reason(cfg, asked_by)
    if reason:
        pytest.skip(reason)


def _assert_flagged(result: IncidentResult, cfg: MongoIndexLockConfig) -> None:
    verdict = result.verdict
    assert verdict.outcome is Outcome.FAIL, (
        "stale reproduction: the pre-fix start-up was not flagged\n" + verdict.describe())
    assert verdict.figures["longest_stall_ms"] > cfg.max_stall_ms, verdict.describe()
    assert any("stalled for" in r for r in verdict.reasons), verdict.describe()


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    INCIDENT, scenario.run, prefix_check=_assert_flagged,
    not_run=lambda cfg: scenario.not_run_reason(cfg, scenario.ASKED_BY_CONFIG))


@pytest.mark.mongo
@pytest.mark.parametrize("fixture", ["fixed", "prefix"])
def test_on_mongodb(fixture: str, repro_settings: Settings, repro_run: Run,
                    repro_results: Session) -> None:
    """The shipped fixtures against a real MongoDB: mongod from PATH, $REPRO_MONGODB_URL,
    or the configured MongoDB target when db already names one."""
    cfg = repro_settings.with_fixture(INCIDENT, "service_startup",
                                      f"mongo_index_lock/{fixture}.py")
    if cfg.kind != "mongodb":
        cfg = dataclasses.replace(cfg, db="mongodb")
    _unless_runnable(cfg, scenario.ASKED_BY_EXTRA)
    expect = Outcome.PASS if fixture == "fixed" else Outcome.FAIL
    result = scenario.run(repro_run, cfg, f"{fixture} on mongodb", expect=expect)
    repro_results.record(result)
    if expect is Outcome.PASS:
        assert result.verdict.outcome is Outcome.PASS, result.verdict.describe()
    else:
        _assert_flagged(result, cfg)
