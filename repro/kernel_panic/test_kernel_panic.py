"""kernel_panic: both directions, on QEMU guests with their own kernel.

- the configuration under test (fixtures/default.toml or --repro-config; by
  default fixtures/kernel_panic/fixed.sh) must pass;
- the pre-fix fixture (image -> snapshot -> resize2fs) must be flagged by a
  kernel-level finding: if it stops failing, the reproduction has gone stale.

A missing QEMU fails both tests with one line saying how to install it (a
missing guest image does too, from the provider). Only a --repro-provider the
user chose that has no own kernel skips them: that backend was their choice.
"""

from __future__ import annotations

import shutil

import pytest

from repro.checks import Outcome
from repro.kernel_panic import scenario
from repro.plugin import Session, Settings
from repro.run import Run

pytestmark = [pytest.mark.kernel_panic, pytest.mark.qemu]


def _needs_qemu_hosts(provider: str) -> None:
    """Skip for a backend the user chose without an own kernel; fail when QEMU is missing."""
    if provider != "qemu":
        pytest.skip(f"kernel_panic needs hosts with their own kernel; provider {provider!r} "
                    "was asked (--repro-provider), and only qemu hosts have one here")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("missing prerequisite: qemu-system-x86_64 is not installed (fix: bash "
                    "setup/setup.sh, or apt-get install qemu-system-x86)", pytrace=False)


def test_configuration_under_test(repro_settings: Settings, repro_run: Run,
                                  repro_results: Session) -> None:
    cfg = repro_settings.for_incident("kernel_panic")
    _needs_qemu_hosts(cfg.provider)
    result = scenario.run(repro_run, cfg, "under test")
    repro_results.record(result)
    assert result.verdict.outcome is Outcome.PASS, result.verdict.describe()


def test_prefix_fixture_is_flagged(repro_settings: Settings, repro_run: Run,
                                   repro_results: Session) -> None:
    cfg = repro_settings.with_fixture("kernel_panic", "volume_setup", "kernel_panic/prefix.sh")
    _needs_qemu_hosts(cfg.provider)
    result = scenario.run(repro_run, cfg, "prefix fixture", expect=Outcome.FAIL)
    repro_results.record(result)
    assert result.verdict.outcome is Outcome.FAIL, (
        "stale reproduction: the pre-fix configuration was not flagged\n"
        + result.verdict.describe())
    assert any(r.startswith("kernel log:") for r in result.verdict.reasons), (
        "the pre-fix configuration failed without a kernel-level finding\n"
        + result.verdict.describe())
