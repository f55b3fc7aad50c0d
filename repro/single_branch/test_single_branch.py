"""single_branch: both directions on Docker hosts.

- the configuration under test (default fixtures/single_branch/fixed.sh) must leave
  WORKDIR at COMMIT for every repository shape tried: the four canonical cases (the
  branch's tip among them), then Hypothesis's search (fixed seed, `examples` budget);
- the pre-fix fixture (`git clone --depth 1`, then reset) must be flagged on the
  canonical branch tip itself (the single-branch mechanism; an older commit fails
  every depth-1 clone); the shape Hypothesis reports and the first failing one it met
  were both really run and failed, and the reported one is no larger (how far it shrank
  is a figure: whether the search meets its minimum first is chance, not the incident).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.harness.directions import both_directions
from repro.harness.history import Event, load
from repro.harness.report.results import IncidentResult
from repro.single_branch import scenario
from repro.single_branch.shapes import BRANCH_TIP, Shape


def _ops(result: IncidentResult, name: str) -> list[Event]:
    return [e for e in load(Path(result.artefacts["history"]))
            if e.kind == "op" and e.get("name") == name]


def _branch_tip(result: IncidentResult) -> Event:
    return next(e for e in _ops(result, "checkout") if e.get("phase") == "canonical"
                and Shape.from_fields(e.get("shape")) == BRANCH_TIP)


def _reached(e: Event) -> bool:
    return bool(e.get("served")) and e.get("exit_code") == 0 and e.get("head") == e.get("commit")


def reaches_the_branch_tip(result: IncidentResult, cfg: Any) -> None:
    assert _reached(_branch_tip(result))


def caught_by_the_single_branch_mechanism(result: IncidentResult, cfg: Any) -> None:
    tip = _branch_tip(result)
    assert tip.get("served") and not _reached(tip), (
        "the pre-fix checkout reached the branch's tip: the single-branch mechanism is "
        "not what this run flagged\n" + result.verdict.describe())
    assert any("single-branch mechanism" in r for r in result.verdict.reasons)
    [minimal] = _ops(result, "minimal")
    first, shrunk = (Shape.from_fields(minimal.get(k)) for k in ("first_shape", "shape"))
    # how far Hypothesis shrank is a figure of the search, not a condition of the verdict
    # (another seed or machine may meet the minimum first); shrinking never grows a shape
    assert shrunk.size <= first.size, (first, shrunk)
    failing = {Shape.from_fields(e.get("shape")) for e in _ops(result, "checkout")
               if not _reached(e)}
    assert {first, shrunk} <= failing  # both were really run and really failed


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "single_branch", scenario.run, under_test_check=reaches_the_branch_tip,
    prefix_check=caught_by_the_single_branch_mechanism)
