"""container_awareness: both directions (repro.harness.directions), and on runners of 2 and 1 CPUs.

- the configuration under test (fixtures/default.toml: container detection off, pools sized
  by hand) must pass;
- the pre-fix fixture (container_awareness/prefix.options: container support on, pools
  sized from the detected processors) must be flagged, by the throughput or the latency it
  delivers, with the JVM having seen fewer processors than the runner's: if it stops
  failing, the reproduction has gone stale;
- the same two with the service's cpuset limited to 2 of the machine's CPUs and the load
  sized from them (`rate = 0`): the verdicts do not depend on the runner's size (skipped on
  a 2-CPU runner, where the first pair is that run);
- with a cpuset of 1 CPU a 1-CPU quota is the whole runner: container detection changes
  nothing a JVM sees, so both directions are inconclusive (and stop before the load).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from repro.container_awareness import scenario
from repro.harness.checks import Outcome
from repro.harness.directions import both_directions
from repro.harness.plugin import PREFIX, UNDER_TEST, Session, Settings
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run

SIZED = {"rate": 0.0, "cpus": 1.0}  # the load sized from the runner, a 1-CPU quota


def pools_constrained(result: IncidentResult, cfg: Any) -> None:
    v = result.verdict
    assert any("of the offered load" in r or "99th percentile latency" in r
               for r in v.reasons), v.describe()
    assert v.figures["available_processors"] < v.figures["runner_cpus"], v.describe()


def run_on_2_cpus(run_ctx: Run, cfg: Any, label: str, expect: Outcome) -> IncidentResult:
    """scenario.run under its own label (its own report folder, beside the first pair's)."""
    return scenario.run(run_ctx, cfg, f"{label} on 2 CPUs", expect)


def two_cpus_missing(cfg: Any) -> str | None:
    cpus = os.cpu_count() or 1
    if cpus == 2:  # the first pair runs the sized load on exactly these 2 CPUs already
        return "this runner has 2 CPUs: the first pair is the 2-CPU run"
    return None if cpus > 2 else "this machine has one CPU: no cpuset of 2 CPUs can be made"


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "container_awareness", scenario.run, prefix_check=pools_constrained)

(test_configuration_under_test_on_2_cpus,
 test_prefix_fixture_is_flagged_on_2_cpus) = both_directions(
    "container_awareness", run_on_2_cpus, prefix_check=pools_constrained,
    changes={**SIZED, "cpuset": "0,1"}, not_run=two_cpus_missing)


@pytest.mark.container_awareness
@pytest.mark.docker
@pytest.mark.parametrize("direction", [UNDER_TEST, PREFIX])
def test_a_one_cpu_runner_is_inconclusive(direction: str, repro_settings: Settings,
                                          repro_run: Run, repro_results: Session) -> None:
    name = "container_awareness"
    base = repro_settings.for_incident(name) if direction == UNDER_TEST else \
        repro_settings.prefix(name)
    cfg = dataclasses.replace(base, **SIZED, cpuset="0")
    label = "under test" if direction == UNDER_TEST else "prefix fixture"
    result = scenario.run(repro_run, cfg, f"{label} on 1 CPU", Outcome.INCONCLUSIVE)
    repro_results.record(result)
    v = result.verdict
    assert v.outcome is Outcome.INCONCLUSIVE, v.describe()
    assert len(v.reasons) == 1 and "container detection changed nothing" in v.reasons[0], \
        v.describe()
    assert v.figures["runner_cpus"] == 1 and v.figures["detected_processors"] == 1
    assert v.figures.get("requests", 0) == 0  # stopped before the load: nothing to judge
