"""single_branch's mechanism on Docker hosts: it is --single-branch, not depth.

The same two canonical repositories are checked out by three steps: the pre-fix
fixture (`git clone --depth 1`, whose --single-branch is implied), a control that
is that very script with `--no-single-branch` added and nothing else changed, and
the fixed fixture. The branch's tip fails with the first and is reached by the
other two: only the branch mode decides it. The older master commit fails with
both depth-1 clones: that case shows depth, not the mechanism, which is why the
pre-fix direction must be flagged on the branch tip itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.harness.history import History, of_kind
from repro.harness.hosts.base import Host
from repro.harness.run import Run
from repro.harness.services.gitserver import GitServer
from repro.single_branch.config import SingleBranchConfig
from repro.single_branch.scenario import Trial
from repro.single_branch.shapes import BRANCH_TIP, OLDER_MASTER

pytestmark = [pytest.mark.docker, pytest.mark.single_branch]
HOSTS = ("docker", ["gitserver", "build"])  # provider, roles: see tests/conftest.py
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "single_branch"
CLONE = "git clone -q --depth 1 "


def control(tmp: Path) -> Path:
    """The pre-fix fixture with `--no-single-branch` added to its clone, nothing else."""
    text = (FIXTURES / "prefix.sh").read_text()
    assert text.count(CLONE) == 1, "prefix.sh no longer has the clone this control changes"
    path = tmp / "no-single-branch.sh"
    path.write_text(text.replace(CLONE, CLONE + "--no-single-branch "))
    return path


def outcomes(run: Run, hosts: dict[str, Host], git: GitServer, script: Path
             ) -> dict[str, tuple[bool, str]]:
    """Shape name -> (WORKDIR at COMMIT, the step's output) for both cases."""
    history = History()
    trial = Trial(run, SingleBranchConfig(checkout=script), git, hosts["build"], history)
    for shape in (BRANCH_TIP, OLDER_MASTER):
        trial(shape)
    ops = of_kind(history.events(), "op")
    assert [e.get("served") for e in ops] == [True, True]
    return {name: (e.get("exit_code") == 0 and e.get("head") == e.get("commit"),
                   str(e.get("output")))
            for name, e in zip(("branch tip", "older master"), ops, strict=True)}


def test_the_branch_tip_fails_only_with_single_branch(run: Run, hosts: dict[str, Host],
                                                      tmp_path: Path) -> None:
    with GitServer(hosts["gitserver"], run) as git:
        prefix = outcomes(run, hosts, git, FIXTURES / "prefix.sh")
        no_single = outcomes(run, hosts, git, control(tmp_path))
        fixed = outcomes(run, hosts, git, FIXTURES / "fixed.sh")
    assert not prefix["branch tip"][0], "the pre-fix clone reached a branch's tip"
    assert "Could not parse object" in prefix["branch tip"][1], prefix["branch tip"][1]
    assert no_single["branch tip"][0], no_single["branch tip"][1]
    assert fixed["branch tip"][0], fixed["branch tip"][1]
    # depth, not branch mode: out of reach of both depth-1 clones, reached by the fix
    assert not prefix["older master"][0] and not no_single["older master"][0]
    assert fixed["older master"][0], fixed["older master"][1]
