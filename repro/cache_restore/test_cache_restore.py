"""cache_restore: both directions (repro.harness.directions), and the restore with nothing cut.

- the configuration under test (fixtures/default.toml: one target at a time, every exit
  status checked) must pass: with one target's stream cut half-way, it fails naming it
  (and only it);
- the same configuration with `cut = "none"` must pass by restoring: exit 0, every target
  complete (a step that fails or over-reports with nothing cut is caught here);
- the pre-fix fixture (cache_restore/prefix.sh: every target at once, a bare `wait`) must be
  flagged, by data loss behind its exit 0: if it stops failing, the reproduction has gone
  stale.
"""

from __future__ import annotations

from typing import Any

from repro.cache_restore import scenario
from repro.harness.checks import Outcome
from repro.harness.directions import RunFn, both_directions
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run


def lost_behind_exit_0(result: IncidentResult, cfg: Any) -> None:
    assert any(r.startswith("data loss: the restore exited 0") for r in result.verdict.reasons), \
        result.verdict.describe()


def restored_everywhere(result: IncidentResult, cfg: Any) -> None:
    figures = result.verdict.figures
    assert figures["exit_code"] == 0, result.verdict.describe()
    assert figures["targets_complete"] == cfg.targets, result.verdict.describe()


def labelled(suffix: str) -> RunFn:
    """scenario.run with `suffix` in its label: the variant keeps its own result folder."""
    def run(run_ctx: Run, cfg: Any, label: str, expect: Outcome = Outcome.PASS
            ) -> IncidentResult:
        return scenario.run(run_ctx, cfg, f"{label}, {suffix}", expect)
    return run


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "cache_restore", scenario.run, prefix_check=lost_behind_exit_0)

# The pre-fix step restores everything when nothing is cut: only the fixed direction here.
test_configuration_under_test_nothing_cut, _ = both_directions(
    "cache_restore", labelled("nothing cut"), under_test_check=restored_everywhere,
    changes={"cut": "none"})
