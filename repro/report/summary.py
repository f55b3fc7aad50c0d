"""summary.md and junit.xml from a run's results.

The table's columns are shared by every incident; its "key figures" column
shows the figures each incident names as its headline (repro.incidents), and
every figure is listed per result under the table.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tabulate import tabulate

from repro.incidents import INCIDENTS
from repro.report.results import IncidentResult

COLUMNS = ["incident", "configuration", "provider", "expected", "verdict", "ok",
           "key figures", "duration s"]


def key_figures(r: IncidentResult) -> str:
    incident = INCIDENTS.get(r.incident)
    keys = incident.headline if incident and incident.headline else tuple(r.figures)[:4]
    return ", ".join(f"{k}={_short(r.figures[k])}" for k in keys if k in r.figures)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)


def rows(results: list[IncidentResult]) -> list[list[object]]:
    return [[r.incident, f"{r.label}: {Path(r.configuration).name}", r.provider,
             r.expected.value, r.verdict.outcome.value,
             "re-run" if r.superseded else "yes" if r.as_expected else "NO",
             key_figures(r), r.duration_s] for r in results]


def table(results: list[IncidentResult], fmt: str = "github") -> str:
    return tabulate(rows(results), headers=COLUMNS, tablefmt=fmt)


def write_markdown(results: list[IncidentResult], path: Path, run_id: str) -> None:
    lines = [f"# repro run {run_id}", "",
             "Each incident runs its configuration under test (expected: pass) and its "
             "pre-fix fixture (expected: fail). `ok` says whether the verdict was the "
             "expected one.", "", table(results), ""]
    for r in results:
        lines.append(f"## {r.incident} — {r.label} ({r.verdict.outcome.value})")
        lines.append("")
        lines.append(f"- configuration: `{r.configuration}` on `{r.provider}`")
        for reason in r.verdict.reasons:
            lines.append(f"- {reason}")
        if r.figures:
            lines.append("")
            lines.append(tabulate(sorted(r.figures.items()), headers=["figure", "value"],
                                  tablefmt="github"))
        if r.artefacts:
            lines.append("")
            lines.extend(f"- {name}: `{p}`" for name, p in r.artefacts.items())
        lines.append("")
    path.write_text("\n".join(lines))


def write_junit(results: list[IncidentResult], path: Path, run_id: str) -> None:
    judged = [r for r in results if not r.superseded]
    suite = ET.Element("testsuite", name=f"repro {run_id}", tests=str(len(judged)),
                       failures=str(sum(not r.as_expected for r in judged)))
    for r in judged:
        case = ET.SubElement(suite, "testcase", classname=f"repro.{r.incident}", name=r.label,
                             time=str(r.duration_s))
        if not r.as_expected:
            failure = ET.SubElement(case, "failure",
                                    message=f"expected {r.expected.value}, got "
                                            f"{r.verdict.outcome.value}")
            failure.text = "\n".join(r.verdict.reasons)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
