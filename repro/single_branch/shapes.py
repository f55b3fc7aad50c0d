"""Repository shapes for the single_branch property, and the Hypothesis strategy for them.

Model: a shape is master with `master_commits` commits, branches `b1..bn`
each forked at a master commit with commits of its own, and the commit the
build asks for: on master or on one branch, `back` commits behind that
branch's tip. `size` orders shapes from small to large, the way a person
reads "the smallest repository that shows it". The strategy draws master's
length first, then the branches, then the target, so Hypothesis shrinks
towards one short master, no branches, its tip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from repro.harness.services.gitserver import BranchSpec, Repo, RepoSpec

MAX_MASTER = 6
MAX_BRANCHES = 3
MAX_BRANCH_COMMITS = 4


@dataclass(frozen=True)
class Shape:
    master_commits: int
    branches: tuple[tuple[int, int], ...] = ()   # (fork: master commit, own commits >= 1)
    branch: int = 0                               # 0: master, i: branches[i - 1]
    back: int = 0                                 # commits behind the tip of that branch

    @property
    def branch_name(self) -> str:
        return "master" if self.branch == 0 else f"b{self.branch}"

    @property
    def is_branch_tip(self) -> bool:
        """The incident's own case: the tip of a branch other than master."""
        return self.branch != 0 and self.back == 0

    @property
    def size(self) -> tuple[int, int, int, int]:
        return (self.master_commits + sum(c for _, c in self.branches), len(self.branches),
                self.branch, self.back)

    def spec(self, name: str, seed: int) -> RepoSpec:
        return RepoSpec(name=name, size_kb=self.master_commits, master_commits=self.master_commits,
                        branches=tuple(BranchSpec(f"b{i + 1}", fork, commits)
                                       for i, (fork, commits) in enumerate(self.branches)),
                        tag_every=2, seed=seed)

    def commit(self, repo: Repo) -> str:
        return repo.commit(self.branch_name, self.back)

    def describe(self) -> str:
        parts = [f"master with {self.master_commits} commit{'s' * (self.master_commits > 1)}"]
        parts += [f"branch b{i + 1} forked at master commit {fork} with {c} commit"
                  f"{'s' * (c > 1)}" for i, (fork, c) in enumerate(self.branches)]
        where = "tip" if self.back == 0 else f"tip~{self.back}"
        return "; ".join(parts) + f"; the build asks for {self.branch_name}'s {where}"

    def fields(self) -> dict[str, Any]:
        return {"master_commits": self.master_commits,
                "branches": [list(b) for b in self.branches],
                "branch": self.branch_name, "back": self.back}

    @staticmethod
    def from_fields(raw: dict[str, Any]) -> Shape:
        """The inverse of `fields()` (a shape read back from a history)."""
        name = str(raw["branch"])
        return Shape(int(raw["master_commits"]),
                     tuple((int(f), int(c)) for f, c in raw["branches"]),
                     0 if name == "master" else int(name.removeprefix("b")), int(raw["back"]))


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    n = draw(st.integers(1, MAX_MASTER))
    branches = tuple(draw(st.lists(st.tuples(st.integers(0, n - 1),
                                             st.integers(1, MAX_BRANCH_COMMITS)),
                                   max_size=MAX_BRANCHES)))
    branch = draw(st.integers(0, len(branches)))
    length = n if branch == 0 else branches[branch - 1][1]
    return Shape(n, branches, branch, draw(st.integers(0, length - 1)))


# The cases the postmortem names, tried before the search in both directions:
# master's tip, an older master commit, a branch's tip, an older commit on a
# branch. BRANCH_TIP is the incident's own case: a depth-1 clone that fetches
# only the default branch (--single-branch) cannot reach it, one that fetches
# every branch's tip (--no-single-branch) can. OLDER_MASTER is out of reach of
# every depth-1 clone (master commit 0 carries no tag), whatever the branch mode.
BRANCH_TIP = Shape(3, ((1, 2),), branch=1)
OLDER_MASTER = Shape(3, back=2)
CANONICAL = (Shape(3), OLDER_MASTER, BRANCH_TIP, Shape(3, ((1, 2),), branch=1, back=1))
