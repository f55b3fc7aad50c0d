"""The repository generator (repro.harness.services.gitgen), run locally: shape, size,
determinism."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from repro.harness.services import gitgen
from repro.harness.services.gitserver import BranchSpec, RepoSpec


def _spec(path: Path, **kw: object) -> dict[str, object]:
    spec: dict[str, object] = {"path": str(path), "seed": 7, "size_kb": 256,
                               "master_commits": 8, "tag_every": 4,
                               "branches": [{"name": "feature", "fork": 3, "commits": 2},
                                            {"name": "empty", "fork": 0, "commits": 0}]}
    spec.update(kw)
    return spec


def git(path: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()


def test_shape_of_the_generated_repository(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    out = gitgen.generate(_spec(repo))
    master, feature = out["branches"]["master"], out["branches"]["feature"]
    assert len(master) == 8 and len(feature) == 2
    assert git(repo, "rev-parse", "master") == master[-1]
    assert git(repo, "rev-parse", "feature") == feature[-1]
    assert git(repo, "rev-parse", "feature~2") == master[3]      # forks at master commit 3
    assert git(repo, "rev-parse", "empty") == master[0]          # a branch with no commits
    assert git(repo, "rev-list", "--count", "master") == "8"
    assert git(repo, "symbolic-ref", "HEAD") == "refs/heads/master"
    assert out["tags"] == {"v1": master[3], "v2": master[7]}
    assert git(repo, "cat-file", "-t", "v1") == "tag"            # annotated
    # random content does not compress: the pack is about the asked size
    assert 256 * 1024 <= out["pack_bytes"] < 300 * 1024
    assert (repo / "git-daemon-export-ok").exists()


def test_same_seed_same_commits_other_seed_other_commits(tmp_path: Path) -> None:
    a = gitgen.generate(_spec(tmp_path / "a.git"))
    b = gitgen.generate(_spec(tmp_path / "b.git"))
    c = gitgen.generate(_spec(tmp_path / "c.git", seed=8))
    assert a["branches"] == b["branches"]
    assert a["branches"]["master"][0] != c["branches"]["master"][0]


def test_a_shallow_clone_moves_one_commits_share(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    gitgen.generate(_spec(repo, size_kb=512))
    clone = tmp_path / "w"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
                   check=True, timeout=60)
    size = sum(p.stat().st_size for p in (clone / ".git" / "objects").rglob("*") if p.is_file())
    assert size < 512 * 1024 / 8 * 1.5


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="fork"):
        RepoSpec(master_commits=3, branches=(BranchSpec("x", 3, 1),)).validate()
    with pytest.raises(ValueError, match="branch name"):
        RepoSpec(branches=(BranchSpec("a b", 0, 1),)).validate()
    with pytest.raises(ValueError, match="fork"):
        gitgen.stream({"master_commits": 2, "size_kb": 1,
                       "branches": [{"name": "x", "fork": 5, "commits": 1}]})
    assert RepoSpec().commit_count == 25
