"""kernel_panic: both directions, on QEMU guests with their own kernel (repro.harness.directions).

- the configuration under test (fixtures/default.toml or --repro-config; by
  default fixtures/kernel_panic/fixed.sh) must pass;
- the pre-fix fixture (image -> snapshot -> resize2fs) must be flagged by a
  kernel-level finding: if it stops failing, the reproduction has gone stale.

A missing QEMU fails both tests with one line saying how to install it (from
the provider). A --repro-provider without an own kernel skips them, with the
spec's reason: that backend was the user's choice.
"""

from __future__ import annotations

from typing import Any

from repro.harness.directions import both_directions
from repro.harness.report.results import IncidentResult
from repro.kernel_panic import scenario


def kernel_level(result: IncidentResult, cfg: Any) -> None:
    assert any(r.startswith("kernel log:") for r in result.verdict.reasons), (
        "the pre-fix configuration failed without a kernel-level finding\n"
        + result.verdict.describe())


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "kernel_panic", scenario.run, prefix_check=kernel_level)
