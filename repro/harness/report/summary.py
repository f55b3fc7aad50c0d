"""summary.md and junit.xml from what a run recorded (repro.harness.report.record).

The table's columns are shared by every incident: one row per result and one
per reproduction that recorded none (verdict "error": it crashed first, with
the error; "not run": skipped, with the reason). Its "key figures / error"
column shows the figures each incident names as its headline
(repro.incidents), or, when the row's test failed or did not run, why. Every
figure is listed per result under the table. Both files open with the run's
status (RunReport.status), which is red whenever pytest's session was not OK.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tabulate import tabulate

from repro.harness.incidents import INCIDENTS
from repro.harness.report.record import Row, RunReport
from repro.harness.report.results import IncidentResult

COLUMNS = ["incident", "configuration", "provider", "expected", "verdict", "ok", "test",
           "key figures / error", "duration s"]
TABLE_NOTE_CHARS = 120


def as_report(report: RunReport | list[IncidentResult], run_id: str = "") -> RunReport:
    """A bare list of results (an older caller) is a report without test records."""
    return report if isinstance(report, RunReport) else RunReport(run_id, list(report))


def key_figures(r: IncidentResult) -> str:
    incident = INCIDENTS.get(r.incident)
    keys = incident.headline_keys if incident and incident.headline else tuple(r.figures)[:4]
    return ", ".join(f"{k}={_short(r.figures[k])}" for k in keys if k in r.figures)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)


def note(row: Row, limit: int = TABLE_NOTE_CHARS) -> str:
    """Key figures; pytest's line instead when it says more than the verdict (no result,
    or an expected verdict and still a failed test)."""
    r = row.result
    text = key_figures(r) if r and not (row.error and r.as_expected) else row.error
    return text if len(text) <= limit else text[:limit - 1] + "…"


def cells(row: Row) -> list[object]:
    return [row.incident, row.configuration, row.provider or "—", row.expected or "—",
            row.verdict, row.ok, row.test or "—", note(row), row.duration_s]


def rows(report: RunReport | list[IncidentResult]) -> list[list[object]]:
    return [cells(r) for r in as_report(report).rows()]


def table(report: RunReport | list[IncidentResult], fmt: str = "github") -> str:
    return tabulate(rows(report), headers=COLUMNS, tablefmt=fmt)


def _section(row: Row) -> list[str]:
    r, rec = row.result, row.record
    lines = [f"## {row.incident} — {row.label} ({row.verdict})", ""]
    if r:
        lines.append(f"- configuration: `{r.configuration}` on `{r.provider}`")
        lines.extend(f"- {reason}" for reason in r.verdict.reasons)
    if rec and (rec.failed or rec.not_run):
        lines.append(f"- test `{rec.nodeid}`: {rec.outcome}" + (
            f": {rec.message}" if rec.message else ""))
    if rec and not r:
        lines.extend(f"- host log: `{name}`" for name in rec.logs)
    if r and r.figures:
        lines += ["", tabulate(sorted(r.figures.items()), headers=["figure", "value"],
                               tablefmt="github")]
    if r and r.artefacts:
        lines.append("")
        lines.extend(f"- {name}: `{p}`" for name, p in r.artefacts.items())
    return [*lines, ""]


def write_markdown(report: RunReport | list[IncidentResult], path: Path, run_id: str = ""
                   ) -> None:
    report = as_report(report, run_id)
    lines = [f"# repro run {report.run_id}", "", f"**{report.status().headline}**", "",
             "Each incident runs its configuration under test (expected: pass) and its "
             "pre-fix fixture (expected: fail). `ok` says whether the verdict was the "
             "expected one and its test passed; `test` is pytest's outcome of the test behind "
             "the row. A reproduction that recorded no result has a row of its own: verdict "
             "`error` (it crashed first) or `not run` (skipped), with why.", "",
             table(report), ""]
    for row in report.rows():
        lines += _section(row)
    if report.other_failures:
        lines += ["## Other tests that failed", ""]
        lines += [f"- `{nodeid}`" for nodeid in report.other_failures] + [""]
    path.write_text("\n".join(lines))


def _case(suite: ET.Element, row: Row) -> str:
    """Add the row's test case; returns "failure", "error", "skipped" or ""."""
    case = ET.SubElement(suite, "testcase", classname=f"repro.{row.incident}", name=row.label,
                         time=str(row.duration_s))
    r, rec = row.result, row.record
    if r is not None and row.bad:
        message = (f"expected {r.expected.value}, got {r.verdict.outcome.value}"
                   if not r.as_expected else f"the test failed after its verdict: {row.error}")
        ET.SubElement(case, "failure", message=message).text = "\n".join(
            [*r.verdict.reasons, *([row.error] if row.error else [])])
        return "failure"
    if r is None and rec is not None and rec.failed:
        ET.SubElement(case, "error", message=f"{rec.outcome}: {rec.message}")
        return "error"
    if r is None and rec is not None and rec.not_run:
        ET.SubElement(case, "skipped", message=rec.message or rec.outcome)
        return "skipped"
    return ""


def _unfinished_case(suite: ET.Element, report: RunReport, headline: str) -> str:
    case = ET.SubElement(suite, "testcase", classname="repro.session", name="run did not finish")
    why = ("abandoned: its process died before the run finished" if report.abandoned else
           "in progress when this file was written (the run rewrites it when it finishes)")
    ET.SubElement(case, "error", message=f"run did not finish: {why}").text = headline
    return "error"


def write_junit(report: RunReport | list[IncidentResult], path: Path, run_id: str = ""
                ) -> None:
    """One test case per judged row (a superseded attempt is not one); a failure per row
    not as expected, an error per crash, a skip per reproduction not run, an error case
    "run did not finish" while the run is in progress or once it is abandoned (a reader
    of junit never takes an unfinished run for a pass), and a failed case "pytest
    session" when pytest's session was not OK and no row says why."""
    report = as_report(report, run_id)
    suite = ET.Element("testsuite", name=f"repro {report.run_id}")
    kinds = [_case(suite, row) for row in report.rows()
             if row.result is None or not row.result.superseded]
    status = report.status()
    if not report.finished:
        kinds.append(_unfinished_case(suite, report, status.headline))
    elif status.state == "bad" and not any(k in ("failure", "error") for k in kinds):
        case = ET.SubElement(suite, "testcase", classname="repro.session", name="pytest session")
        ET.SubElement(case, "failure", message=status.headline).text = "\n".join(
            report.other_failures)
        kinds.append("failure")
    for attr, kind in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
        suite.set(attr, str(kinds.count(kind)))
    suite.set("tests", str(len(kinds)))
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
