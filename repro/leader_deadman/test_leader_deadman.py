"""leader_deadman: both directions on Docker hosts and a real etcd.

- the configuration under test (default: fixtures/leader_deadman/fixed.sh, leadership on
  an etcd lease) must pass under each fault: one decider, another server decides within
  max_takeover_s after the leader's host is killed (the configured fault), paused or cut
  off (the `_pause` and `_partition` variants), one decider after;
- the pre-fix fixture (prefix.sh: the newest boot time, registered without a lease)
  must be flagged by the cluster going static, for the whole fault window (the
  configured fault, kill by default);
- the unfenced agent (unfenced.sh: elected on a lease, then deciding without ever
  checking it again) must be flagged after a pause: the thawed leader decides beside
  the new one (split brain after healing).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from repro.harness.checks import Outcome
from repro.harness.directions import Pair, RunFn, both_directions, traced
from repro.harness.incidents import INCIDENTS
from repro.harness.plugin import Session, Settings
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.leader_deadman import scenario

UNFENCED = "leader_deadman/unfenced.sh"


def took_over(result: IncidentResult, cfg: Any) -> None:
    figures = result.verdict.figures
    assert figures["new_leader"] not in (None, figures["leader"]), figures


def went_static(result: IncidentResult, cfg: Any) -> None:
    assert any("cluster static" in r for r in result.verdict.reasons), \
        result.verdict.describe()
    assert result.verdict.figures["static_s"] > cfg.max_takeover_s


def split_after_healing(result: IncidentResult, cfg: Any) -> None:
    verdict = result.verdict
    assert verdict.reasons[0].startswith("split brain"), verdict.describe()
    assert verdict.figures["deciders_after"] >= 2, verdict.describe()


def under(fault: str) -> RunFn:
    """scenario.run with the fault in its label: each variant keeps its own result folder."""
    def run(run_ctx: Run, cfg: Any, label: str, expect: Outcome = Outcome.PASS
            ) -> IncidentResult:
        return scenario.run(run_ctx, cfg, f"{label}, {fault}", expect)
    return run


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "leader_deadman", scenario.run, under_test_check=took_over, prefix_check=went_static)

test_configuration_under_test_pause, _ = both_directions(
    "leader_deadman", under("pause"), under_test_check=took_over, changes={"fault": "pause"})

test_configuration_under_test_partition, _ = both_directions(
    "leader_deadman", under("partition"), under_test_check=took_over,
    changes={"fault": "partition"})


@pytest.mark.leader_deadman
@pytest.mark.docker
def test_unfenced_agent_is_flagged_after_a_pause(
        repro_settings: Settings, repro_run: Run, repro_results: Session) -> None:
    """A shipped broken agent (runs in the pre-fix direction): split brain once thawed."""
    cfg = repro_settings.with_fixture("leader_deadman", "agent", UNFENCED)
    cfg = Pair(INCIDENTS["leader_deadman"]).runnable(
        repro_settings, dataclasses.replace(cfg, fault="pause"))
    result = repro_results.judged(lambda again: traced(scenario.run(
        repro_run, cfg, f"unfenced agent, pause{again}", Outcome.FAIL), cfg))
    assert result.verdict.outcome is Outcome.FAIL, (
        f"the unfenced agent ({UNFENCED}) was not flagged\n" + result.verdict.describe())
    split_after_healing(result, cfg)
