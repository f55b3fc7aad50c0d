"""mongo_index_lock: both directions, on the configured database.

- the configuration under test (fixtures/default.toml: the fixed start-up, or
  --repro-config) must pass: no stall, p99 within bounds;
- the pre-fix fixture (every instance declares every index) must be flagged
  with the stall it caused; if it stops failing, the reproduction has gone
  stale, which is a finding.
On MongoDB (db = "mongodb" or a mongodb:// URI) the same two tests run against
a real server; where none can be had they skip, saying so.
"""

from __future__ import annotations

import dataclasses

import pytest

from repro.checks import Outcome
from repro.databases import mongodb
from repro.mongo_index_lock import scenario
from repro.mongo_index_lock.config import MongoIndexLockConfig
from repro.plugin import Session, Settings
from repro.run import Run

pytestmark = [pytest.mark.mongo, pytest.mark.slow]
INCIDENT = "mongo_index_lock"
PREFIX = "mongo_index_lock/prefix.py"


def _skip_without_mongodb(cfg: MongoIndexLockConfig) -> None:
    if cfg.kind == "mongodb" and not mongodb.available(cfg.db):
        pytest.skip(mongodb.MISSING_REASON)


def _assert_flagged(cfg: MongoIndexLockConfig, result: object) -> None:
    verdict = result.verdict  # type: ignore[attr-defined]
    assert verdict.outcome is Outcome.FAIL, (
        "stale reproduction: the pre-fix start-up was not flagged\n" + verdict.describe())
    assert verdict.figures["longest_stall_ms"] > cfg.max_stall_ms, verdict.describe()
    assert any("stalled for" in r for r in verdict.reasons), verdict.describe()


def test_configuration_under_test(repro_settings: Settings, repro_run: Run,
                                  repro_results: Session) -> None:
    cfg = repro_settings.for_incident(INCIDENT)
    _skip_without_mongodb(cfg)
    result = repro_results.judged(lambda again: scenario.run(repro_run, cfg, "under test" + again))
    assert result.verdict.outcome is Outcome.PASS, result.verdict.describe()


def test_prefix_fixture_is_flagged(repro_settings: Settings, repro_run: Run,
                                   repro_results: Session) -> None:
    cfg = repro_settings.with_fixture(INCIDENT, "service_startup", PREFIX)
    _skip_without_mongodb(cfg)
    result = repro_results.judged(lambda again: scenario.run(
        repro_run, cfg, "prefix fixture" + again, expect=Outcome.FAIL))
    _assert_flagged(cfg, result)


@pytest.mark.parametrize("fixture", ["fixed", "prefix"])
def test_on_mongodb(fixture: str, repro_settings: Settings, repro_run: Run,
                    repro_results: Session) -> None:
    """The same storm against a real MongoDB (mongod from PATH or $REPRO_MONGODB_URL)."""
    cfg = repro_settings.with_fixture(INCIDENT, "service_startup",
                                      f"mongo_index_lock/{fixture}.py")
    if cfg.kind == "mongodb":
        pytest.skip("the configuration under test already runs on MongoDB (tests above)")
    cfg = dataclasses.replace(cfg, db="mongodb")
    _skip_without_mongodb(cfg)
    expect = Outcome.PASS if fixture == "fixed" else Outcome.FAIL
    result = scenario.run(repro_run, cfg, f"{fixture} on mongodb", expect=expect)
    repro_results.record(result)
    if expect is Outcome.PASS:
        assert result.verdict.outcome is Outcome.PASS, result.verdict.describe()
    else:
        _assert_flagged(cfg, result)
