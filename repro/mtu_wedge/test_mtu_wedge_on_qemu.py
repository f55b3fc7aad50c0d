"""mtu_wedge on QEMU guests (their own kernel; TCG here): both directions hold there too.

Kept out of the `mtu` marker so that `pytest repro/ -m mtu` stays a quick
Docker check (under a minute); select this with `-m qemu` or run the whole
suite. Skipped when --repro-provider chose the backend, or the configuration
already says provider = "qemu": test_mtu_wedge.py ran on it then. A missing
QEMU fails, saying how to install it.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from repro.checks import Outcome
from repro.mtu_wedge import scenario
from repro.plugin import Session, Settings
from repro.run import Run

pytestmark = [pytest.mark.qemu]


@pytest.mark.parametrize("direction", ["under test", "prefix fixture"])
def test_on_qemu_hosts(direction: str, repro_settings: Settings, repro_run: Run,
                       repro_results: Session) -> None:
    """The same reproduction on hosts with their own kernel (TCG here): both directions hold."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("missing prerequisite: qemu-system-x86_64 is not installed "
                    "(fix: bash setup/setup.sh)", pytrace=False)
    if repro_settings.provider:
        pytest.skip(f"--repro-provider {repro_settings.provider} chose the backend; "
                    "test_mtu_wedge.py ran on it")
    if direction == "under test":
        cfg = repro_settings.for_incident("mtu_wedge")
        expect = Outcome.PASS
    else:
        cfg = repro_settings.with_fixture("mtu_wedge", "host_init", "mtu_wedge/prefix.sh")
        expect = Outcome.FAIL
    if cfg.provider == "qemu":
        pytest.skip("the configuration already says provider = \"qemu\": "
                    "test_mtu_wedge.py ran on it")
    cfg = dataclasses.replace(cfg, provider="qemu")
    result = repro_results.judged(lambda again: scenario.run(
        repro_run, cfg, f"{direction} on qemu{again}", expect=expect))
    assert result.verdict.outcome is expect, result.verdict.describe()
    if expect is Outcome.FAIL:
        assert any("dropped off the network" in r for r in result.verdict.reasons)
