"""leader_deadman: both directions on Docker hosts and a real etcd.

- the configuration under test (default: fixtures/leader_deadman/fixed.sh, leadership on
  an etcd lease) must pass: one decider, another server decides within max_takeover_s
  after the leader's host is killed, one decider after;
- the pre-fix fixture (prefix.sh: the newest boot time, registered without a lease)
  must be flagged by the cluster going static, for the whole fault window.
"""

from __future__ import annotations

from typing import Any

from repro.harness.directions import both_directions
from repro.harness.report.results import IncidentResult
from repro.leader_deadman import scenario


def took_over(result: IncidentResult, cfg: Any) -> None:
    figures = result.verdict.figures
    assert figures["new_leader"] not in (None, figures["leader"]), figures


def went_static(result: IncidentResult, cfg: Any) -> None:
    assert any("cluster static" in r for r in result.verdict.reasons), \
        result.verdict.describe()
    assert result.verdict.figures["static_s"] > cfg.max_takeover_s


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "leader_deadman", scenario.run, under_test_check=took_over, prefix_check=went_static)
