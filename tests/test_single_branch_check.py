"""The single_branch oracle, the repository shapes and the search, without hosts.

The oracle is fed hand-written histories. The search runs against models of
the checkout instead of git (`holds(shape)`): a depth-1 clone that fetches
only master's tip (the pre-fix `--single-branch`), and a step that fails only
on a branch's tip; Hypothesis's seed is fixed, so what it meets first and what
it shrinks that to are the same on every run.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from repro.harness.checks import Outcome, run_checker
from repro.harness.history import Event
from repro.single_branch.check import Params, check
from repro.single_branch.config import SingleBranchConfig
from repro.single_branch.scenario import search
from repro.single_branch.shapes import (
    BRANCH_TIP,
    CANONICAL,
    MAX_MASTER,
    OLDER_MASTER,
    Shape,
    shapes,
)
from tests.histories import ev

C = "a" * 40
SEED = SingleBranchConfig().seed
EXAMPLES = SingleBranchConfig().examples


def op(t: float, shape: Shape, code: int = 0, head: str = C, commit: str = C,
       served: bool = True) -> Event:
    return ev(t, "op", "repro-ab12-build", name="checkout", phase="canonical",
              shape=shape.fields(), describe=shape.describe(), size=list(shape.size),
              branch=shape.branch_name, back=shape.back, commit=commit, exit_code=code,
              elapsed_s=0.3, head=head, served=served,
              output="fatal: Could not parse object" if code else "")


def failed(t: float, shape: Shape, served: bool = True) -> Event:
    return op(t, shape, 128, "b" * 40, served=served)


def judge(events: list[Event]) -> Any:
    return run_checker(check, events, Params())


def test_every_shape_at_its_commit_passes() -> None:
    v = judge([op(i, s) for i, s in enumerate(CANONICAL)])
    assert v.outcome is Outcome.PASS and v.figures["shapes_tried"] == 4
    assert v.figures["branch_tips_tried"] == 1 and v.figures["older_tried"] == 2
    assert v.figures["shapes_unserved"] == 0 and v.figures["shapes_failing"] == 0


def test_failures_name_the_smallest_repository() -> None:
    big = Shape(5, ((1, 3), (2, 2)), branch=2, back=1)
    small = Shape(2, back=1)
    events = [op(0, CANONICAL[0]), failed(1, big), failed(2, small), op(3, BRANCH_TIP),
              ev(4, "op", "b", name="minimal", describe=small.describe(),
                 first_describe=big.describe())]
    v = judge(events)
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith("2 of 4 repository shapes")
    assert "master with 2 commits; the build asks for master's tip~1" in v.reasons[1]
    assert v.figures["smallest_failing"] == small.describe()
    assert v.figures["hypothesis_shrunk_to"] == small.describe()
    assert v.figures["hypothesis_first_failing"] == big.describe()
    # neither failure is a branch's tip: nothing here blames --single-branch
    assert v.figures["branch_tips_failing"] == 0
    assert not any("single-branch" in r for r in v.reasons)


def test_a_branch_tip_not_reached_is_named_as_the_mechanism() -> None:
    v = judge([op(0, CANONICAL[0]), failed(1, OLDER_MASTER), failed(2, BRANCH_TIP),
               op(3, CANONICAL[3])])
    assert v.outcome is Outcome.FAIL and v.figures["branch_tips_failing"] == 1
    # the smallest failure overall is the older master commit; the mechanism is named apart
    assert "master's tip~2" in v.reasons[1]
    assert v.reasons[2].startswith("1 of 1 branch tips not reached")
    assert "single-branch mechanism" in v.reasons[2] and "b1's tip" in v.reasons[2]


def test_exit_zero_away_from_commit_fails() -> None:
    v = judge([op(0, s) for s in CANONICAL] + [op(5, CANONICAL[3], 0, "b" * 40)])
    assert v.outcome is Outcome.FAIL


def test_a_failure_on_an_unserved_repository_proves_nothing() -> None:
    # the server did not answer ls-remote for the branch tip: its failure is not the step's
    v = judge([op(0, CANONICAL[0]), op(1, OLDER_MASTER), failed(2, BRANCH_TIP, served=False),
               op(3, CANONICAL[3]), op(4, Shape(2, ((0, 1),), branch=1))])
    assert v.outcome is Outcome.INCONCLUSIVE, v.reasons
    assert v.reasons == ("the git server did not serve 1 of 5 shapes (ls-remote from the build "
                         "host did not show the branch at its tip): the step's result there "
                         "proves nothing",)
    assert v.figures["shapes_unserved"] == 1 and v.figures["shapes_failing"] == 0


def test_a_failure_beside_unserved_shapes_stays_a_failure() -> None:
    v = judge([failed(0, OLDER_MASTER), failed(1, BRANCH_TIP, served=False),
               op(2, Shape(2, ((0, 1),), branch=1))])
    assert v.outcome is Outcome.FAIL
    assert v.reasons[0].startswith("1 of 2 repository shapes")
    assert any("did not serve 1 of 3 shapes" in r for r in v.reasons)


def test_nothing_served_is_inconclusive() -> None:
    v = judge([failed(i, s, served=False) for i, s in enumerate(CANONICAL)])
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.reasons[1] == "no checkout ran against a repository the git server served"
    assert judge([]).outcome is Outcome.INCONCLUSIVE


def test_never_trying_the_incidents_case_is_inconclusive() -> None:
    # served shapes on master only (the branch shapes were not served): never exercised
    v = judge([op(0, Shape(1)), op(1, Shape(3)), failed(2, BRANCH_TIP, served=False)])
    assert v.outcome is Outcome.INCONCLUSIVE
    assert "did not serve 1 of 3" in v.reasons[0]
    assert "tip of a branch other than master" in v.reasons[1]
    assert "older commit" in v.reasons[2]


def single_branch_clone(shape: Shape) -> bool:
    """Model of the pre-fix step: a depth-1 clone gets master's tip and nothing else."""
    return shape.branch == 0 and shape.back == 0


def branch_tips_fail(shape: Shape) -> bool:
    """Model of a step that reaches every commit but a branch's tip."""
    return not shape.is_branch_tip


def test_search_shrinks_the_first_failure_it_meets() -> None:
    found = search(single_branch_clone, EXAMPLES, SEED)
    assert found is not None
    assert not single_branch_clone(found.first) and not single_branch_clone(found.minimal)
    # shrinking happened: what it met first is bigger than what it reports
    assert found.first == Shape(6, ((3, 3), (3, 4), (1, 4)), branch=3, back=1)
    assert found.minimal == Shape(2, back=1)
    assert found.minimal.size < found.first.size and found.minimal not in CANONICAL
    # and it is minimal: every one-step simplification holds
    assert single_branch_clone(Shape(1)) and single_branch_clone(Shape(2))
    assert search(single_branch_clone, EXAMPLES, SEED) == found  # same seed, same search


def test_search_shrinks_a_branch_tip_below_the_canonical_case() -> None:
    found = search(branch_tips_fail, EXAMPLES, SEED)
    assert found is not None and found.first.is_branch_tip
    assert found.minimal == Shape(1, ((0, 1),), branch=1)
    assert found.minimal.size < BRANCH_TIP.size < found.first.size
    assert found.minimal not in CANONICAL


def test_search_finds_nothing_when_every_shape_holds() -> None:
    assert search(lambda shape: True, EXAMPLES, SEED) is None


@settings(max_examples=50, derandomize=True)
@given(shapes())
def test_generated_shapes_are_valid_repositories(shape: Shape) -> None:
    spec = shape.spec("x", seed=1)
    spec.validate()
    assert 1 <= shape.master_commits <= MAX_MASTER
    own = shape.master_commits if shape.branch == 0 else shape.branches[shape.branch - 1][1]
    assert 0 <= shape.back < own
    assert shape.branch_name in {"master", *(b.name for b in spec.branches)}
    assert Shape.from_fields(shape.fields()) == shape
