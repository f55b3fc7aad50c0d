"""benchmarks.bench_suite on a small hand-made run folder (no Docker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_suite
from repro.harness.checks import Outcome, Verdict
from repro.harness.report.record import RunReport, TestRecord, write_report_json
from repro.harness.report.results import IncidentResult

NODE = "repro/demo/test_demo.py::"


def _history(path: Path, events: list[tuple[float, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"t": t, "kind": kind, "host": "h"}) for t, kind in events]
    path.write_text("\n".join(lines) + "\n" + '{"t": 99.0, "kind": "pro')  # a torn last line


def _result(run_dir: Path, label: str, slug: str, outcome: Outcome, expected: Outcome,
            test: str, duration: float, superseded: bool = False) -> IncidentResult:
    # the path a shard wrote: elsewhere, so the reader must find it under the run folder
    named = Path("/nonexistent/shard") / "demo" / slug / "history.jsonl"
    return IncidentResult("demo", label, f"fixtures/demo/{slug}.sh", "docker",
                          Verdict(outcome, (), {}), expected, duration,
                          {"history": str(named)}, test=NODE + test, superseded=superseded)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "20261201-000000-abcd"
    # under test: life cycle until 2, observed 2..10, a note at 11: span 8 s of a 10 s wall
    _history(d / "demo" / "under-test" / "history.jsonl",
             [(0.5, "host"), (2.0, "probe"), (4.0, "fault.start"), (6.0, "fault.stop"),
              (10.0, "op"), (11.0, "note")])
    # prefix: two attempts share one folder name here; its history spans 1..4 (3 s)
    _history(d / "demo" / "prefix-fixture" / "history.jsonl",
             [(1.0, "mark"), (2.5, "phase"), (4.0, "stream")])
    results = [
        _result(d, "under test", "under-test", Outcome.PASS, Outcome.PASS,
                "test_configuration_under_test", 9.0),
        _result(d, "prefix fixture", "prefix-fixture", Outcome.INCONCLUSIVE, Outcome.FAIL,
                "test_prefix_fixture_is_flagged", 5.0, superseded=True),
        _result(d, "prefix fixture", "prefix-fixture", Outcome.FAIL, Outcome.FAIL,
                "test_prefix_fixture_is_flagged", 5.0),
    ]
    tests = [TestRecord(NODE + "test_configuration_under_test", "demo", "passed", "", 10.0),
             TestRecord(NODE + "test_prefix_fixture_is_flagged", "demo", "passed", "", 20.0)]
    write_report_json(RunReport(d.name, results, tests, exit_status=0), d / "results.json")
    return d


def test_rows_wall_observed_overhead(run_dir: Path) -> None:
    rows = {r.direction: r for r in bench_suite.rows(run_dir)}
    fixed, prefix = rows["under test"], rows["prefix fixture"]
    assert (fixed.wall_s, fixed.observed_s, fixed.attempts) == (10.0, 8.0, 1)
    assert fixed.overhead == pytest.approx(0.2)
    assert fixed.outcome == "pass"
    # both attempts' spans count (the same file here: 3 s each) against the test's 20 s
    assert (prefix.wall_s, prefix.observed_s, prefix.attempts) == (20.0, 6.0, 2)
    assert prefix.overhead == pytest.approx(0.7)
    assert prefix.outcome == "fail"


def test_main_prints_table_and_totals(run_dir: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    assert bench_suite.main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "| demo " in out and "under test" in out and "prefix fixture" in out
    total = next(line for line in out.splitlines() if line.startswith("| total  "))
    assert "30.0" in total and "14.0" in total and "16.0" in total and "53 %" in total
    assert "harness overhead 53 % of the wall time: over the 20 % target" in out


def test_missing_history_and_missing_run(run_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (run_dir / "demo" / "under-test" / "history.jsonl").unlink()
    rows = {r.direction: r for r in bench_suite.rows(run_dir)}
    assert rows["under test"].observed_s is None and rows["under test"].overhead is None
    assert bench_suite.main([str(run_dir)]) == 0
    assert "no history read for: demo (under test)" in capsys.readouterr().out
    assert bench_suite.main([str(tmp_path / "nothing")]) == 2


def test_observation_span_ignores_life_cycle_and_torn_lines() -> None:
    lines = ['{"t": 0.1, "kind": "host"}', '{"t": 1.0, "kind": "probe"}',
             '{"t": 3.0, "kind": "op"}', '{"t": 5.0, "kind": "note"}', '{"t": 7']
    span = bench_suite.observation_span(lines)
    assert span is not None and (span.first, span.last) == (1.0, 3.0)
    assert bench_suite.observation_span(['{"t": 1.0, "kind": "host"}']) is None
