"""Shards: every test in exactly one shard, deterministic, balanced; merged back into one.

The property tests draw collections of tests and durations (Hypothesis). The end-to-end
test runs the real plugin in three pytest processes (`repro run --shard I/3` through
pytest's own entry) over every incident that takes a host provider, with a host image
that does not exist, so each reproduction fails at once with one line (no host starts),
then merges the shard
folders: every reproduction is in the merged report exactly once, and a missing shard
turns the banner red and names it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from repro.harness.report.merge import merge
from repro.harness.shards import Shard, assign, share

# The incidents whose servers run on the runner (PostgreSQL) take no host provider: an
# absent image does not stop them, and they would run for real (2 minutes) in each shard run.
HOSTLESS = "not mongo and not blackhole_replica and not backlog_drain"
UNITS = st.dictionaries(st.text("abcdefgh_", min_size=1, max_size=8),
                        st.floats(1, 1000, allow_nan=False), min_size=1, max_size=30)


@given(UNITS, st.integers(1, 6))
def test_every_unit_is_in_exactly_one_shard_and_the_split_is_balanced(
        units: dict[str, float], n: int) -> None:
    where = assign(units, n)
    assert set(where) == set(units) and set(where.values()) <= set(range(1, n + 1))
    assert assign(dict(reversed(list(units.items()))), n) == where   # order-free
    load = [sum(s for u, s in units.items() if where[u] == i) for i in range(1, n + 1)]
    # longest-processing-time: within the longest unit of the ideal share
    assert max(load) <= sum(units.values()) / n + max(units.values()) + 1e-6


def test_an_incident_never_splits_across_shards() -> None:
    tests = [(f"repro/{inc}/test_x.py::test_{d}", inc) for inc in ("a", "b", "c", "d")
             for d in ("under", "prefix", "under_on_qemu")]
    tests += [("tests/test_m.py::test_1", None), ("tests/test_m.py::test_2", None)]
    parts = [share(tests, Shard(i, 3), {"a": 300.0}) for i in (1, 2, 3)]
    assert sorted(n for p in parts for n in p) == sorted(n for n, _ in tests)
    for inc in ("a", "b", "c", "d"):
        assert sum(any(f"/{inc}/" in n for n in p) for p in parts) == 1


def test_bad_shards_are_one_line() -> None:
    for text in ("0/3", "4/3", "1/0", "a/b", "1-3"):
        try:
            Shard.parse(text)
        except ValueError as exc:
            assert "I/N" in str(exc)
        else:
            raise AssertionError(text)


def _shard(i: int, reports: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "repro/",
         "-m", HOSTLESS, "--repro-provider", "docker:repro-absent-image:none",
         "--repro-run-id", "T1", "--repro-shard", f"{i}/3", "--repro-reports", str(reports)],
        capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[1])


def _collected() -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p",
                          "no:cacheprovider", "repro/", "-m", HOSTLESS],
                         capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).parents[1]).stdout
    return sorted(line for line in out.splitlines() if "::" in line)


def test_three_shards_merge_into_one_report(tmp_path: Path) -> None:
    for i in (1, 2, 3):
        _shard(i, tmp_path)
    folders = [tmp_path / f"T1.shard-{i}-of-3" for i in (1, 2, 3)]
    metas = [json.loads((f / "shard.json").read_text()) for f in folders]
    ran = [n for m in metas for n in m["nodeids"]]
    assert len(ran) == len(set(ran)) and sorted(ran) == _collected()   # each once
    merged, out = merge(folders, tmp_path / "merged")
    reproductions = [n for n in ran if "/tests/" not in n]   # not the checkers' unit tests
    assert sorted(t.nodeid for t in merged.tests) == sorted(reproductions)
    assert not merged.missing and out == tmp_path / "merged"
    assert (out / "index.html").is_file() and (out / "durations.json").is_file()
    partial, _ = merge(folders[:2], tmp_path / "partial")
    assert partial.missing == [3]
    assert "shard(s) 3 of 3 missing" in partial.status().headline
    assert partial.status().state == "bad"
