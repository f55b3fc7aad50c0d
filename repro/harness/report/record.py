"""What a run recorded: every reproduction pytest collected, the results they recorded,
and pytest's own verdict on the session.

Model. A *reproduction* is a test under `repro/<incident>/`; the plugin gives each
one a TestRecord when collection ends (outcome "not reached" until pytest reports
it) and updates it from pytest's reports: passed, failed (its call raised: an
assertion after the result was recorded, or a crash before), error (its set-up or
tear-down raised, e.g. a module fixture that could not provision hosts) or skipped
(with the reason: MongoDB with no server, a QEMU-only test under another
--repro-provider, a direction not selected). Each IncidentResult names the test
that recorded it.

`RunReport.rows()` lines them up, one Row per result and one per reproduction that
recorded none, in collection order; `status()` is the headline every report shows.
A run is green only when pytest's session finished OK (exit 0) and every row is
as expected: a crash, an assertion that failed after its verdict, a test outside
the reproductions that failed, or a non-zero exit makes it red, whatever the
verdicts say. A run with nothing judged (everything skipped), still in progress,
or whose exit status is not known (results without a session, from an older
caller) is neither. A run that did not finish is never green: while it runs its
report says so (junit.xml has an error case "run did not finish"), and once its
owner process (`owner`: pid and start time) is gone without finishing it is
*abandoned* (repro.harness.report.lifecycle marks it): red.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from repro.harness.report.results import IncidentResult

PASSED, FAILED, ERROR, SKIPPED, NOT_REACHED = "passed", "failed", "error", "skipped", \
    "not reached"
NOT_RUN = "not run"
MESSAGE_CHARS = 300


def one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    """A multi-line message as one line (whitespace collapsed), at most `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


@dataclass
class TestRecord:
    """One collected reproduction and what pytest made of it."""

    __test__ = False  # not a pytest test class

    nodeid: str
    incident: str
    outcome: str = NOT_REACHED  # passed | failed | error | skipped | not reached
    message: str = ""           # one line: the failure, the error, or the skip reason
    duration_s: float = 0.0
    logs: list[str] = field(default_factory=list)  # host logs no result took (run-relative)

    @property
    def name(self) -> str:
        return self.nodeid.rsplit("::", 1)[-1]

    @property
    def failed(self) -> bool:
        return self.outcome in (FAILED, ERROR)

    @property
    def not_run(self) -> bool:
        return self.outcome in (SKIPPED, NOT_REACHED)


@dataclass(frozen=True)
class Row:
    """One line of every report's table: a result, or a reproduction without one."""

    incident: str
    configuration: str
    provider: str
    expected: str
    verdict: str   # the checker's outcome, "error" (crashed before a result) or "not run"
    ok: str        # yes | NO | re-run | not run
    test: str      # pytest's outcome of the test behind the row ("" when not known)
    error: str     # one line: why the test failed or was skipped ("" when it passed)
    duration_s: float
    result: IncidentResult | None = None
    record: TestRecord | None = None

    @property
    def label(self) -> str:
        return self.result.label if self.result else self.record.name if self.record else ""

    @property
    def bad(self) -> bool:
        return self.ok == "NO"


def _result_row(r: IncidentResult, rec: TestRecord | None) -> Row:
    test_failed = rec is not None and rec.failed
    ok = "re-run" if r.superseded else "NO" if not r.as_expected or test_failed else "yes"
    return Row(r.incident, f"{r.label}: {Path(r.configuration).name}", r.provider,
               r.expected.value, r.verdict.outcome.value, ok, rec.outcome if rec else "",
               rec.message if test_failed and rec else "", r.duration_s, r, rec)


def _test_row(rec: TestRecord) -> Row:
    verdict = "error" if rec.failed else NOT_RUN if rec.not_run else "no result"
    ok = "NO" if rec.failed else NOT_RUN if rec.not_run else "yes"
    return Row(rec.incident, rec.name, "", "", verdict, ok, rec.outcome,
               rec.message or ("" if rec.outcome == PASSED else rec.outcome),
               rec.duration_s, None, rec)


@dataclass(frozen=True)
class Status:
    state: Literal["good", "bad", "void"]  # green, red, neither (nothing judged / running)
    headline: str


@dataclass
class RunReport:
    run_id: str
    results: list[IncidentResult]
    tests: list[TestRecord] = field(default_factory=list)
    other_failures: list[str] = field(default_factory=list)  # failed tests outside repro/
    exit_status: int | None = None  # pytest's, once the session finished (None: not known)
    finished: bool = True           # False while the session runs
    provenance: dict[str, Any] = field(default_factory=dict)  # repro.harness.provenance
    abandoned: bool = False  # not finished, and its owner process is gone
    owner: dict[str, Any] = field(default_factory=dict)  # {"pid", "start_ticks"} of its process

    def rows(self) -> list[Row]:
        by_test: dict[str, list[IncidentResult]] = defaultdict(list)
        known = {t.nodeid for t in self.tests}
        for r in self.results:
            if r.test in known:
                by_test[r.test].append(r)
        out: list[Row] = []
        for rec in self.tests:
            mine = by_test.get(rec.nodeid)
            out += [_result_row(r, rec) for r in mine] if mine else [_test_row(rec)]
        return out + [_result_row(r, None) for r in self.results if r.test not in known]

    def status(self) -> Status:
        rows = self.rows()
        judged = [r for r in rows if r.result and not r.result.superseded]
        unexpected = [r for r in judged if not r.result.as_expected]  # type: ignore[union-attr]
        after = [r for r in judged if r.result.as_expected and r.bad]  # type: ignore[union-attr]
        crashed = [r for r in rows if r.result is None and r.bad]
        not_run = [r for r in rows if r.ok == NOT_RUN]
        parts = [f"{len(unexpected)} of {len(judged)} results NOT as expected" if unexpected
                 else f"All {len(judged)} results as expected" if judged
                 else "No results recorded"]
        parts += [f"{len(after)} failed after recording an expected verdict"] if after else []
        parts += [f"{len(crashed)} crashed before a result"] if crashed else []
        parts += [f"{len(not_run)} not run"] if not_run else []
        parts += [f"{len(self.other_failures)} other test(s) failed"] \
            if self.other_failures else []
        if self.abandoned:
            return Status("bad", "FAILED: run did not finish (abandoned: its process "
                          f"{self.owner.get('pid', '?')} died first); " + "; ".join(parts))
        if not self.finished:
            return Status("void", "; ".join(parts) + " (run in progress)")
        session_bad = self.exit_status not in (None, 0)
        red = bool(unexpected or after or crashed or self.other_failures or session_bad)
        pytest_says = (f"pytest exit status {self.exit_status}" if session_bad
                       else "pytest passed" if self.exit_status == 0
                       else "pytest's exit status not recorded")
        headline = "; ".join(parts) + f" ({pytest_says})"
        if red:
            return Status("bad", "FAILED: " + headline)
        return Status("good" if judged and self.exit_status == 0 else "void", headline)

    def to_dict(self) -> dict[str, Any]:
        records = {t.nodeid: t for t in self.tests}
        results = []
        for r in self.results:
            d = r.to_dict()
            rec = records.get(r.test)
            d["test_outcome"] = rec.outcome if rec else ""
            d["error"] = rec.message if rec and rec.failed else ""
            results.append(d)
        status = self.status()
        return {"run_id": self.run_id,
                "session": {"finished": self.finished, "exit_status": self.exit_status,
                            "status": status.state, "headline": status.headline,
                            "other_failures": self.other_failures,
                            "abandoned": self.abandoned, "owner": self.owner},
                "provenance": self.provenance,
                "results": results, "tests": [asdict(t) for t in self.tests]}

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> RunReport:
        """Also reads the results.json of runs before test records existed (results only)."""
        session = raw.get("session", {})
        return RunReport(raw["run_id"], [IncidentResult.from_dict(d) for d in raw["results"]],
                         [TestRecord(**t) for t in raw.get("tests", [])],
                         list(session.get("other_failures", [])),
                         session.get("exit_status"), bool(session.get("finished", True)),
                         dict(raw.get("provenance") or {}),
                         bool(session.get("abandoned", False)),
                         dict(session.get("owner") or {}))


def write_report_json(report: RunReport, path: Path) -> None:
    path.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")


def read_report(path: Path) -> RunReport:
    return RunReport.from_dict(json.loads(path.read_text()))
