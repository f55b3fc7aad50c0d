"""The report records every reproduction, and its status agrees with pytest's exit status.

A fake incident folder (repro/mtu_wedge/ under pytester's directory) holds tests that
pass, fail an assertion after recording an expected verdict, crash before any result,
crash in a fixture, and skip; pytest runs them in-process with the repro plugin and
--repro-reports pointing at a scratch directory. No hosts are started.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from repro.harness import cleanup
from repro.harness.report.record import read_report

pytest_plugins = ["pytester"]

RESULT = '''
import pytest
from repro.harness.checks import Outcome, Verdict
from repro.harness.report.results import IncidentResult


def result(label, outcome, expected):
    return IncidentResult("mtu_wedge", label, "fixed.sh", "docker",
                          Verdict(outcome, ("why",)), expected, 1.0)
'''

FAKE_INCIDENT = RESULT + '''
pytestmark = [pytest.mark.mtu]


@pytest.fixture(scope="module")
def hosts(repro_run):
    raise RuntimeError("sshd never answered on repro-ab12-target")


def test_configuration_under_test(repro_results):
    repro_results.record(result("under test", Outcome.PASS, Outcome.PASS))


def test_prefix_fixture_is_flagged(repro_results):
    repro_results.record(result("prefix fixture", Outcome.FAIL, Outcome.FAIL))
    assert 2 >= 3, "the capture shows no back-off run"


def test_crashes_before_a_result(repro_results):
    raise RuntimeError("the git server never started")


def test_fixture_crashes(hosts, repro_results):
    pass


def test_needs_a_server(repro_results):
    pytest.skip("no MongoDB server here (install mongod or set REPRO_MONGODB_URL)")
'''


@pytest.fixture(autouse=True)
def _no_reaping(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's start reaps dead runs' leftovers (Docker...): not in a unit test."""
    monkeypatch.setattr(cleanup, "reap", lambda all_runs: [])


def run_fake(pytester: pytest.Pytester, source: str, *args: str
             ) -> tuple[pytest.RunResult, Path]:
    folder = pytester.path / "repro" / "mtu_wedge"
    folder.mkdir(parents=True)
    (folder / "test_fake.py").write_text(source)
    reports = pytester.path / "reports"
    got = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--repro-reports",
                                       str(reports), str(folder), *args)
    return got, reports / "latest"


def test_crashes_assertions_after_recording_and_skips_are_all_in_the_report(
        pytester: pytest.Pytester) -> None:
    got, latest = run_fake(pytester, FAKE_INCIDENT)
    got.assert_outcomes(passed=1, failed=2, errors=1, skipped=1)
    report = read_report(latest / "results.json")
    assert report.exit_status == 1 and report.finished
    by_label = {row.label: row for row in report.rows()}
    assert list(by_label) == ["under test", "prefix fixture", "test_crashes_before_a_result",
                              "test_fixture_crashes", "test_needs_a_server"]
    assert by_label["under test"].ok == "yes" and by_label["under test"].test == "passed"
    after = by_label["prefix fixture"]  # the verdict was as expected, the test was not
    assert after.verdict == "fail" and after.ok == "NO" and after.test == "failed"
    assert "the capture shows no back-off run" in after.error
    crash = by_label["test_crashes_before_a_result"]
    assert (crash.verdict, crash.ok, crash.test) == ("error", "NO", "failed")
    assert crash.error.startswith("RuntimeError: the git server never started")
    fixture = by_label["test_fixture_crashes"]
    assert (fixture.verdict, fixture.test) == ("error", "error")
    assert "sshd never answered" in fixture.error
    skipped = by_label["test_needs_a_server"]
    assert (skipped.verdict, skipped.ok, skipped.test) == ("not run", "not run", "skipped")
    assert skipped.error.startswith("no MongoDB server here")

    status = report.status()
    assert status.state == "bad"
    assert status.headline == (
        "FAILED: All 2 results as expected; 1 failed after recording an expected verdict; "
        "2 crashed before a result; 1 not run (pytest exit status 1)")
    md = (latest / "summary.md").read_text()
    assert f"**{status.headline}**" in md
    assert "| mtu_wedge  | test_crashes_before_a_result" in md
    assert "RuntimeError: the git server never started" in md
    assert "not run" in md and "no MongoDB server here" in md
    page = (latest / "index.html").read_text()
    assert '<header class="banner bad">' in page and "2 crashed before a result" in page
    suite = ET.parse(latest / "junit.xml").getroot()
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "5", "failures": "1", "errors": "2", "skipped": "1"}
    raw = json.loads((latest / "results.json").read_text())
    assert [(r["label"], r["test_outcome"]) for r in raw["results"]] == [
        ("under test", "passed"), ("prefix fixture", "failed")]
    assert raw["results"][1]["error"].startswith("AssertionError: the capture shows no")
    assert raw["session"]["status"] == "bad"
    assert "repro results" in got.stdout.str() and "2 crashed before a result" in \
        got.stdout.str()


def test_a_run_whose_every_reproduction_passed_is_green(pytester: pytest.Pytester) -> None:
    got, latest = run_fake(pytester, RESULT + '''
def test_configuration_under_test(repro_results):
    repro_results.record(result("under test", Outcome.PASS, Outcome.PASS))
''')
    got.assert_outcomes(passed=1)
    status = read_report(latest / "results.json").status()
    assert (status.state, status.headline) == ("good", "All 1 results as expected (pytest passed)")
    assert '<header class="banner good">' in (latest / "index.html").read_text()


def test_a_failing_test_outside_the_reproductions_makes_the_report_red(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unit="def test_broken():\n    assert False\n")
    got, latest = run_fake(pytester, RESULT + '''
def test_configuration_under_test(repro_results):
    repro_results.record(result("under test", Outcome.PASS, Outcome.PASS))
''', str(pytester.path / "test_unit.py"))
    got.assert_outcomes(passed=1, failed=1)
    report = read_report(latest / "results.json")
    assert report.other_failures == ["test_unit.py::test_broken"]
    assert report.status().headline == ("FAILED: All 1 results as expected; 1 other test(s) "
                                        "failed (pytest exit status 1)")
    suite = ET.parse(latest / "junit.xml").getroot()
    assert [c.get("name") for c in suite.iter("testcase")
            if c.find("failure") is not None] == ["pytest session"]


def test_reproductions_skipped_before_any_host_still_get_a_report(
        pytester: pytest.Pytester) -> None:
    got, latest = run_fake(pytester, '''
import pytest

pytestmark = [pytest.mark.mtu]


@pytest.fixture(autouse=True)
def _needs_qemu():
    pytest.skip("qemu-system-x86_64 is not installed")


def test_configuration_under_test(repro_results):
    pass
''')
    got.assert_outcomes(skipped=1)
    report = read_report(latest / "results.json")
    [row] = report.rows()
    assert (row.incident, row.verdict, row.error) == (
        "mtu_wedge", "not run", "qemu-system-x86_64 is not installed")
    assert report.status().state == "void"  # nothing judged: neither green nor red
    assert "No results recorded; 1 not run (pytest passed)" in (latest / "summary.md").read_text()


def test_tests_outside_a_repro_incident_folder_are_not_reproductions(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unit="import pytest\n\n@pytest.mark.mtu\ndef test_x():\n    pass\n")
    got = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--repro-reports",
                                       str(pytester.path / "reports"))
    got.assert_outcomes(passed=1)
    assert not (pytester.path / "reports").exists()  # no reproduction ran: no report
