"""mtu_wedge on QEMU guests (their own kernel; TCG here): both directions hold there too.

Kept out of the `mtu` marker so that `pytest repro/ -m mtu` stays a quick
Docker check (under a minute); select this with `-m qemu` or run the whole
suite. Skipped when --repro-provider chose the backend, or the configuration
already says provider = "qemu": test_mtu_wedge.py ran on it then. A missing
QEMU fails, saying how to install it.
"""

from __future__ import annotations

from repro.harness.directions import both_directions
from repro.mtu_wedge import scenario
from repro.mtu_wedge.test_mtu_wedge import dropped_off

test_configuration_under_test_on_qemu, test_prefix_fixture_is_flagged_on_qemu = (
    both_directions("mtu_wedge", scenario.run, prefix_check=dropped_off, provider="qemu",
                    marked=False))
