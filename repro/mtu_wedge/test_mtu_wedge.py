"""mtu_wedge: both directions.

- the configuration under test (fixtures/default.toml, or --repro-config) must pass;
- the pre-fix fixture (MTU 1400 + the emulated driver failure) must be flagged:
  if it stops failing, the reproduction has gone stale, which is a finding.

Both again on QEMU guests: test_mtu_wedge_on_qemu.py.
"""

from __future__ import annotations

import pytest

from repro.checks import Outcome
from repro.mtu_wedge import scenario
from repro.plugin import Session, Settings
from repro.run import Run

pytestmark = [pytest.mark.mtu, pytest.mark.docker]


def test_configuration_under_test(repro_settings: Settings, repro_run: Run,
                                  repro_results: Session) -> None:
    cfg = repro_settings.for_incident("mtu_wedge")
    result = repro_results.judged(lambda again: scenario.run(repro_run, cfg, "under test" + again))
    assert result.verdict.outcome is Outcome.PASS, result.verdict.describe()


def test_prefix_fixture_is_flagged(repro_settings: Settings, repro_run: Run,
                                   repro_results: Session) -> None:
    cfg = repro_settings.with_fixture("mtu_wedge", "host_init", "mtu_wedge/prefix.sh")
    result = repro_results.judged(lambda again: scenario.run(
        repro_run, cfg, "prefix fixture" + again, expect=Outcome.FAIL))
    assert result.verdict.outcome is Outcome.FAIL, (
        "stale reproduction: the pre-fix configuration was not flagged\n"
        + result.verdict.describe())
    assert any("dropped off the network" in r for r in result.verdict.reasons)

