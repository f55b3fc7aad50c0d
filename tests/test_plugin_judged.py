"""An inconclusive attempt is run again once; both are reported; a second one stands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.harness.checks import Outcome, Verdict
from repro.harness.plugin import Session
from repro.harness.report.results import IncidentResult
from repro.harness.report.summary import rows


def attempts(*outcomes: Outcome) -> Any:
    queue = list(outcomes)
    labels: list[str] = []

    def run_once(suffix: str) -> IncidentResult:
        labels.append("under test" + suffix)
        return IncidentResult("mtu_wedge", labels[-1], "fixed.sh", "docker",
                              Verdict(queue.pop(0), ("why",)), Outcome.PASS, 1.0)
    return run_once, labels


def session(tmp_path: Path) -> Session:
    return Session(settings=None, reports_root=tmp_path)  # type: ignore[arg-type]


def test_inconclusive_then_pass_passes_and_both_are_reported(tmp_path):
    s = session(tmp_path)
    run_once, labels = attempts(Outcome.INCONCLUSIVE, Outcome.PASS)
    result = s.judged(run_once)
    assert result.verdict.outcome is Outcome.PASS
    assert labels == ["under test", "under test (attempt 2)"]
    assert [r.superseded for r in s.results] == [True, False]
    assert [row[5] for row in rows(s.results)] == ["re-run", "yes"]


def test_a_second_inconclusive_stands(tmp_path):
    s = session(tmp_path)
    result = s.judged(attempts(Outcome.INCONCLUSIVE, Outcome.INCONCLUSIVE)[0])
    assert result.verdict.outcome is Outcome.INCONCLUSIVE and not result.as_expected


def test_a_failure_is_never_run_again(tmp_path):
    s = session(tmp_path)
    run_once, labels = attempts(Outcome.FAIL, Outcome.PASS)
    assert s.judged(run_once).verdict.outcome is Outcome.FAIL and len(labels) == 1


def test_a_failure_beside_inconclusive_reasons_is_a_failure_and_not_run_again(tmp_path):
    s = session(tmp_path)
    verdicts = [Verdict.judge(["ssh sessions froze for 30 s"], ["streams moved nothing"], {}),
                Verdict(Outcome.PASS)]
    labels: list[str] = []

    def run_once(suffix: str) -> IncidentResult:
        labels.append("under test" + suffix)
        return IncidentResult("mtu_wedge", labels[-1], "fixed.sh", "docker", verdicts.pop(0),
                              Outcome.PASS, 1.0)
    result = s.judged(run_once)
    assert result.verdict.outcome is Outcome.FAIL and labels == ["under test"]
    assert result.verdict.reasons == ("ssh sessions froze for 30 s", "streams moved nothing")
    assert [r.superseded for r in s.results] == [False]
