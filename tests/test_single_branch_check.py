"""The single_branch oracle and the repository shapes, without hosts."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from repro.checks import Outcome, run_checker
from repro.history import Event
from repro.single_branch.check import Params, check
from repro.single_branch.shapes import CANONICAL, MAX_MASTER, Shape, shapes
from tests.histories import ev

C = "a" * 40


def op(t: float, shape: Shape, code: int = 0, head: str = C, commit: str = C) -> Event:
    return ev(t, "op", "repro-ab12-build", name="checkout", shape=shape.fields(),
              describe=shape.describe(), size=list(shape.size), branch=shape.branch_name,
              back=shape.back, commit=commit, exit_code=code, elapsed_s=0.3, head=head,
              output="fatal: Could not parse object" if code else "")


def judge(events: list[Event]) -> Any:
    return run_checker(check, events, Params())


def test_every_shape_at_its_commit_passes() -> None:
    v = judge([op(i, s) for i, s in enumerate(CANONICAL)])
    assert v.outcome is Outcome.PASS and v.figures["shapes_tried"] == 4
    assert v.figures["off_master_tried"] == 2 and v.figures["older_tried"] == 2


def test_failures_name_the_smallest_repository() -> None:
    big = Shape(5, ((1, 3), (2, 2)), branch=2, back=1)
    small = Shape(2, back=1)
    events = [op(0, CANONICAL[0]), op(1, big, 128, C[:-1] + "b"), op(2, small, 128, "b" * 40),
              op(3, CANONICAL[2]), ev(4, "op", "b", name="minimal", describe=small.describe())]
    v = judge(events)
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith("2 of 4 repository shapes")
    assert "master with 2 commits; the build asks for master's tip~1" in v.reasons[1]
    assert v.figures["smallest_failing"] == small.describe()
    assert v.figures["hypothesis_shrunk_to"] == small.describe()


def test_exit_zero_away_from_commit_fails() -> None:
    v = judge([op(0, s) for s in CANONICAL] + [op(5, CANONICAL[3], 0, "b" * 40)])
    assert v.outcome is Outcome.FAIL


def test_never_trying_the_incidents_case_is_inconclusive() -> None:
    v = judge([op(0, Shape(1)), op(1, Shape(3))])
    assert v.outcome is Outcome.INCONCLUSIVE
    assert "off master" in v.reasons[0] and "older commit" in v.reasons[1]
    assert judge([]).outcome is Outcome.INCONCLUSIVE


@settings(max_examples=50, derandomize=True)
@given(shapes())
def test_generated_shapes_are_valid_repositories(shape: Shape) -> None:
    spec = shape.spec("x", seed=1)
    spec.validate()
    assert 1 <= shape.master_commits <= MAX_MASTER
    own = shape.master_commits if shape.branch == 0 else shape.branches[shape.branch - 1][1]
    assert 0 <= shape.back < own
    assert shape.branch_name in {"master", *(b.name for b in spec.branches)}
