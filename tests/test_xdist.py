"""`pytest repro/ -n 2`: one logical run, one merged report, every reproduction once.

Two xdist workers run every incident with a host image that does not exist (each
reproduction fails at once, no host starts); the controller merges the workers' report
folders into one: every reproduction is there exactly once, each module's tests ran on
one worker (its module fixtures are shared), and the workers' physical run ids
(their names on the machine) differ.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.test_shards import HOSTLESS

ROOT = Path(__file__).parents[1]


def test_two_workers_give_one_report(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "repro/",
         "-m", HOSTLESS, "--repro-provider", "docker:repro-absent-image:none",
         "--repro-run-id", "X1", "--repro-reports", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert "report: " + str(tmp_path / "X1" / "summary.md") in res.stdout, res.stdout[-2000:]
    merged = json.loads((tmp_path / "X1" / "results.json").read_text())
    nodeids = [t["nodeid"] for t in merged["tests"]]
    assert len(nodeids) == len(set(nodeids)) and all("@" not in n for n in nodeids)
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
         "repro/", "-m", HOSTLESS], capture_output=True, text=True, timeout=300,
        cwd=ROOT).stdout
    reproductions = sorted(line for line in collected.splitlines()
                           if "::" in line and "/tests/" not in line)
    assert sorted(nodeids) == reproductions
    shards = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("X1.shard-*/shard.json"))]
    assert [s["shard"] for s in shards] == [1, 2] and all(s["of"] == 2 for s in shards)
    assert len({s["physical_run_id"] for s in shards}) == 2
    for module in {n.split("::")[0] for n in nodeids}:   # a module stays on one worker
        assert sum(any(n.startswith(module + "::") for n in s["nodeids"]) for s in shards) == 1
    assert (tmp_path / "X1" / "index.html").is_file()
