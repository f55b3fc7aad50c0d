"""A run that did not finish is never green.

Model (repro.harness.report.lifecycle): from its Run's start a session's report says it
has not finished (junit.xml: an error case "run did not finish"), `reports/in-progress`
points at it and `reports/latest` does not; its end rewrites the report and switches
`latest`. A run whose process died first (SIGKILL, the OOM killer) is marked abandoned
(red) by the next `repro` command or session that starts a Run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from repro.harness import cleanup, cli
from repro.harness.checks import Outcome, Verdict
from repro.harness.procs import start_ticks
from repro.harness.report import lifecycle, summary
from repro.harness.report.record import RunReport, TestRecord, read_report, write_report_json
from repro.harness.report.results import IncidentResult

pytest_plugins = ["pytester"]


def passing() -> IncidentResult:
    return IncidentResult("mtu_wedge", "under test", "fixed.sh", "docker",
                          Verdict(Outcome.PASS, ("why",)), Outcome.PASS, 1.0,
                          test="repro/mtu_wedge/test_x.py::test_a")


def report(finished: bool, owner: dict[str, object] | None = None) -> RunReport:
    return RunReport("20261207-000000-ab12", [passing()],
                     [TestRecord("repro/mtu_wedge/test_x.py::test_a", "mtu_wedge", "passed")],
                     exit_status=0 if finished else None, finished=finished,
                     owner=dict(owner or {}))


def junit_errors(path: Path) -> list[str]:
    suite = ET.parse(path).getroot()
    return [e.get("message", "") for e in suite.iter("error")]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_an_unfinished_run_has_an_error_case_in_its_junit(tmp_path: Path) -> None:
    summary.write_junit(report(finished=False), tmp_path / "junit.xml")
    assert junit_errors(tmp_path / "junit.xml") == [
        "run did not finish: in progress when this file was written (the run rewrites it "
        "when it finishes)"]
    assert ET.parse(tmp_path / "junit.xml").getroot().get("errors") == "1"
    summary.write_junit(report(finished=True), tmp_path / "junit.xml")
    assert junit_errors(tmp_path / "junit.xml") == []
    assert report(finished=True).status().state == "good"
    assert report(finished=False).status().state == "void"


def test_an_abandoned_run_is_red_and_says_so(tmp_path: Path) -> None:
    rep = report(finished=False, owner={"pid": 4242})
    rep.abandoned = True
    write_report_json(rep, tmp_path / "results.json")
    back = read_report(tmp_path / "results.json")
    assert back.abandoned and back.owner == {"pid": 4242}
    assert back.status().state == "bad"
    assert back.status().headline.startswith(
        "FAILED: run did not finish (abandoned: its process 4242 died first)")
    summary.write_junit(back, tmp_path / "junit.xml")
    assert junit_errors(tmp_path / "junit.xml") == [
        "run did not finish: abandoned: its process died before the run finished"]


def folder_of(root: Path, name: str, rep: RunReport) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    write_report_json(rep, folder / "results.json")
    summary.write_junit(rep, folder / "junit.xml")
    return folder


def test_only_runs_whose_owner_died_are_marked(tmp_path: Path) -> None:
    me: dict[str, object] = {"pid": os.getpid(), "start_ticks": start_ticks(os.getpid())}
    dead = folder_of(tmp_path, "dead", report(False, {"pid": dead_pid(), "start_ticks": 1}))
    reused = folder_of(tmp_path, "reused", report(False, {"pid": os.getpid(),
                                                          "start_ticks": -1}))
    live = folder_of(tmp_path, "live", report(False, me))
    done = folder_of(tmp_path, "done", report(True, {"pid": dead_pid()}))
    (tmp_path / "in-progress").symlink_to("dead")
    assert lifecycle.mark_abandoned(tmp_path) == [dead, reused]
    assert read_report(dead / "results.json").abandoned
    assert "abandoned" in junit_errors(dead / "junit.xml")[0]
    assert "**FAILED: run did not finish" in (dead / "summary.md").read_text()
    assert not read_report(live / "results.json").abandoned
    assert not read_report(done / "results.json").abandoned
    assert not (tmp_path / "in-progress").is_symlink()
    assert lifecycle.mark_abandoned(tmp_path) == []  # once


def test_a_report_without_an_owner_is_judged_by_its_live_run(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    rep = report(False)
    gone = folder_of(tmp_path, "gone", rep)
    monkeypatch.setattr(cleanup, "live_runs", lambda: {"ab12": rep.run_id})
    assert lifecycle.mark_abandoned(tmp_path) == []
    monkeypatch.setattr(cleanup, "live_runs", lambda: {})
    assert lifecycle.mark_abandoned(tmp_path) == [gone]


WATCHED = '''
import json, os, signal
import xml.etree.ElementTree as ET
from pathlib import Path
from repro.harness.checks import Outcome, Verdict
from repro.harness.report.results import IncidentResult

REPORTS = Path(os.environ["REPORTS"])


def test_configuration_under_test(repro_results, repro_run):
    repro_results.record(IncidentResult("mtu_wedge", "under test", "fixed.sh", "docker",
                                        Verdict(Outcome.PASS, ("why",)), Outcome.PASS, 1.0))
    assert (REPORTS / "in-progress").resolve() == repro_run.reports.resolve()
    assert not (REPORTS / "latest").exists()
    errors = [e.get("message") for e in
              ET.parse(REPORTS / "in-progress" / "junit.xml").getroot().iter("error")]
    assert errors and errors[0].startswith("run did not finish"), errors
    if os.environ.get("DIE"):
        os.kill(os.getpid(), signal.SIGKILL)
'''

NO_REAPING = '''
from repro.harness import cleanup
cleanup.reap = lambda all_runs: []  # a unit test: no Docker leftovers reaped
'''


def run_watched(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, die: bool
                ) -> tuple[pytest.RunResult, Path]:
    folder = pytester.path / "repro" / "mtu_wedge"
    folder.mkdir(parents=True)
    (folder / "test_watched.py").write_text(WATCHED)
    (pytester.path / "conftest.py").write_text(NO_REAPING)
    reports = pytester.path / "reports"
    monkeypatch.setenv("REPORTS", str(reports))
    if die:
        monkeypatch.setenv("DIE", "1")
    got = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--repro-reports",
                                        str(reports), str(folder), timeout=120)
    return got, reports


def test_latest_is_switched_when_the_run_finishes(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    got, reports = run_watched(pytester, monkeypatch, die=False)
    got.assert_outcomes(passed=1)
    assert not (reports / "in-progress").is_symlink()
    assert junit_errors(reports / "latest" / "junit.xml") == []
    assert read_report(reports / "latest" / "results.json").status().state == "good"


def test_a_killed_run_is_marked_abandoned_by_the_next_command(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    got, reports = run_watched(pytester, monkeypatch, die=True)
    assert got.ret == -9, got.stdout.str()
    (run_dir,) = [d for d in reports.iterdir() if not d.name.startswith(("latest", "in-"))]
    assert not (reports / "latest").exists()
    assert junit_errors(run_dir / "junit.xml")[0].startswith("run did not finish: in progress")
    assert cli.main(["report", "--reports", str(reports), run_dir.name]) == 0
    out, err = capsys.readouterr()
    assert f"run {run_dir.name} did not finish (its process died): marked abandoned" in err
    assert "FAILED: run did not finish (abandoned" in out
    raw = json.loads((run_dir / "results.json").read_text())
    assert raw["session"]["abandoned"] is True and raw["session"]["status"] == "bad"
    assert junit_errors(run_dir / "junit.xml") == [
        "run did not finish: abandoned: its process died before the run finished"]
    assert not (reports / "in-progress").is_symlink()
