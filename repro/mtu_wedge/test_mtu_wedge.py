"""mtu_wedge: both directions.

- the configuration under test (fixtures/default.toml, or --repro-config) must pass;
- the pre-fix fixture (MTU 1400 + the emulated driver failure) must be flagged:
  if it stops failing, the reproduction has gone stale, which is a finding;
- both again on QEMU guests (their own kernel, TCG here), unless the backend
  was chosen with --repro-provider or the configuration already uses qemu.
"""

from __future__ import annotations

import dataclasses
import shutil

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


@pytest.mark.qemu
@pytest.mark.parametrize("direction", ["under test", "prefix fixture"])
def test_on_qemu_hosts(direction: str, repro_settings: Settings, repro_run: Run,
                       repro_results: Session) -> None:
    """The same reproduction on hosts with their own kernel (TCG here): both directions hold."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (setup/setup.sh installs it)")
    if repro_settings.provider:
        pytest.skip(f"--repro-provider {repro_settings.provider} chose the backend; "
                    "the tests above ran on it")
    if direction == "under test":
        cfg = repro_settings.for_incident("mtu_wedge")
        expect = Outcome.PASS
    else:
        cfg = repro_settings.with_fixture("mtu_wedge", "host_init", "mtu_wedge/prefix.sh")
        expect = Outcome.FAIL
    if cfg.provider == "qemu":
        pytest.skip("the configuration already uses provider = \"qemu\": the tests above ran on it")
    cfg = dataclasses.replace(cfg, provider="qemu")
    result = repro_results.judged(lambda again: scenario.run(
        repro_run, cfg, f"{direction} on qemu{again}", expect=expect))
    assert result.verdict.outcome is expect, result.verdict.describe()
    if expect is Outcome.FAIL:
        assert any("dropped off the network" in r for r in result.verdict.reasons)
