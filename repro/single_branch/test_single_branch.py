"""single_branch: both directions on Docker hosts.

- the configuration under test (default fixtures/single_branch/fixed.sh) must leave
  WORKDIR at COMMIT for every repository shape tried: the four canonical cases, then
  Hypothesis's search (fixed seed, `examples` budget);
- the pre-fix fixture (`git clone --depth 1`, then reset) must be flagged, with the
  smallest repository that shows it (Hypothesis shrinks the failure) in the report.
"""

from __future__ import annotations

import pytest

from repro.checks import Outcome
from repro.plugin import Session, Settings
from repro.run import Run
from repro.single_branch import scenario

pytestmark = [pytest.mark.single_branch, pytest.mark.docker]


def test_configuration_under_test(repro_settings: Settings, repro_run: Run,
                                  repro_results: Session) -> None:
    cfg = repro_settings.for_incident("single_branch")
    result = scenario.run(repro_run, cfg, "under test")
    repro_results.record(result)
    assert result.verdict.outcome is Outcome.PASS, result.verdict.describe()


def test_prefix_fixture_is_flagged(repro_settings: Settings, repro_run: Run,
                                   repro_results: Session) -> None:
    cfg = repro_settings.with_fixture("single_branch", "checkout", "single_branch/prefix.sh")
    result = scenario.run(repro_run, cfg, "prefix fixture", expect=Outcome.FAIL)
    repro_results.record(result)
    assert result.verdict.outcome is Outcome.FAIL, (
        "stale reproduction: the pre-fix checkout was not flagged\n" + result.verdict.describe())
    # shrunk to a two-commit repository: the smallest that a depth-1 clone cannot serve
    smallest = str(result.figures["smallest_failing"])
    assert any("smallest repository that shows it" in r for r in result.verdict.reasons)
    assert smallest.count("commit") <= 3, smallest
