"""index.html: the static page a person opens first after a run (no server needed).

Model: one page per run directory (reports/<run id>/index.html). Top: a
banner that says at a glance whether the run is good (RunReport.status: red
whenever pytest's session was not OK, a reproduction crashed or failed after
its verdict, or a verdict was not the expected one; grey when nothing was
judged), then the verdict table (the same rows as summary.md, each linking to
its section; reproductions without a result included, with pytest's error or
skip reason). Then one section per row: for a result its verdict badge, the checker's
reasons, the timeline PNG drawn from the result's history.jsonl
(repro.harness.report.timeline, written to figures/), any figures the incident drew
itself, the measured figures, and links to the raw artefacts (history,
serial consoles, the logs of exactly the hosts it ran on, packet captures). Every link
is relative to the run directory, so the page works from a CI artefact download or a file://
URL. A timeline that cannot be drawn is named on the page with the error,
never silently missing.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote

from repro.harness.history import load
from repro.harness.incidents import INCIDENTS
from repro.harness.report import summary, timeline
from repro.harness.report.record import Row, RunReport
from repro.harness.report.results import IncidentResult

OK_CLASS = {"yes": "yes", "NO": "no", "re-run": "rerun", "not run": "notrun"}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #fafafa; }
main { padding: 0 24px 40px; max-width: 1200px; }
.banner { padding: 18px 24px; color: white; }
.banner h1 { margin: 0 0 4px; font-size: 22px; }
.banner p { margin: 0; font-size: 18px; font-weight: 600; }
.banner.good { background: #2e7d32; } .banner.bad { background: #b71c1c; }
.banner.void { background: #616161; }
table { border-collapse: collapse; margin: 8px 0 16px; background: white; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #eceff1; }
td.ok-yes { background: #c8e6c9; } td.ok-no { background: #ffcdd2; font-weight: 700; }
td.ok-notrun { background: #eeeeee; font-style: italic; } td.ok-rerun { color: #616161; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 4px; color: white;
         font-size: 14px; vertical-align: middle; }
.v-pass { background: #2e7d32; } .v-fail { background: #c62828; }
.v-inconclusive { background: #ef6c00; } .v-unknown { background: #616161; }
.v-error { background: #6a1b9a; } .v-notrun { background: #9e9e9e; }
section.result { border-top: 2px solid #cfd8dc; margin-top: 24px; }
img.timeline { max-width: 100%; border: 1px solid #ddd; background: white; }
.missing { color: #b71c1c; }
"""


def _slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def _href(target: Path, run_dir: Path) -> str:
    """A link relative to the run directory (or a file:// URL when it lies outside)."""
    try:
        return quote(str(target.resolve().relative_to(run_dir.resolve())))
    except ValueError:
        return "file://" + quote(str(target.resolve()))


def _artefact_links(r: IncidentResult, run_dir: Path) -> list[tuple[str, Path | None, str]]:
    """(name, file or None, note) for the result's artefacts (its hosts' logs among them,
    by exact file: repro.harness.report.hostlogs) and the files of its own folder."""
    found: list[tuple[str, Path | None, str]] = []
    for name, value in r.artefacts.items():
        p = Path(value)
        found.append((name, p, "") if p.is_absolute() and p.exists() else (name, None, value))
    history = r.artefacts.get("history")
    if history and Path(history).is_file():  # the result's own folder: captures, logs, ...
        found += [(f.name, f, "") for f in sorted(Path(history).parent.iterdir())
                  if f.is_file() and all(f != p for _, p, _ in found)]
    return found


def _timeline(r: IncidentResult, run_dir: Path, slug: str) -> tuple[Path | None, str]:
    history = r.artefacts.get("history")
    if not history or not Path(history).is_file():
        return None, "no history was recorded for this result"
    try:
        png = run_dir / "figures" / f"{slug}.png"
        spec = INCIDENTS.get(r.incident)
        return timeline.draw(load(Path(history)), png, f"{r.incident} — {r.label}",
                             r.verdict.outcome.value, spec.panels if spec else ()), ""
    except Exception as exc:  # the page must still show everything else
        return None, f"timeline not drawn: {type(exc).__name__}: {exc}"


def _section(r: IncidentResult, run_dir: Path, slug: str, test_error: str = "") -> str:
    e = html.escape
    met = "as expected" if r.as_expected else "<b>NOT as expected</b>"
    out = [f'<section class="result" id="{slug}">',
           f"<h2>{e(r.incident)} — {e(r.label)} "
           f'<span class="badge v-{r.verdict.outcome.value}">'
           f"{r.verdict.outcome.value.upper()}</span></h2>",
           f"<p>configuration <code>{e(r.configuration)}</code> on <code>{e(r.provider)}</code>"
           f"{', target ' + e(r.target) if r.target else ''}; expected "
           f"<b>{r.expected.value}</b>: {met}; {r.duration_s} s</p>"]
    if test_error:
        out.append(f'<p class="missing">the test failed after recording this result: '
                   f"{e(test_error)}</p>")
    if r.verdict.reasons:
        out.append("<ul class=\"reasons\">" + "".join(f"<li>{e(x)}</li>"
                                                     for x in r.verdict.reasons) + "</ul>")
    out += [f'<p class="missing">{e(n)}</p>' for n in r.notes]
    links = _artefact_links(r, run_dir)
    png, note = _timeline(r, run_dir, slug)
    if png:
        out.append(f'<img class="timeline" src="{_href(png, run_dir)}" '
                   f'alt="timeline of {e(r.incident)} {e(r.label)}">')
    else:
        out.append(f'<p class="missing">{e(note)}</p>')
    for name, p, _ in links:
        if p is not None and p.suffix == ".png":
            out.append(f"<p>{e(name)}:</p><img class=\"timeline\" src=\"{_href(p, run_dir)}\" "
                       f'alt="{e(name)}">')
    if r.figures:
        out.append("<table class=\"figures\"><tr><th>figure</th><th>value</th></tr>"
                   + "".join(f"<tr><td>{e(str(k))}</td><td>{e(str(v))}</td></tr>"
                             for k, v in sorted(r.figures.items())) + "</table>")
    if links:
        out.append("<h3>Raw artefacts</h3><ul class=\"artefacts\">")
        for name, p, note in links:
            out.append(f'<li><a href="{_href(p, run_dir)}">{e(name)}</a> '
                       f"<small>{e(p.name)}</small></li>" if p is not None else
                       f"<li>{e(name)}: {e(note)}</li>")
        out.append("</ul>")
    out.append("</section>")
    return "\n".join(out)


def _test_section(row: Row, slug: str, run_dir: Path) -> str:
    """A reproduction that recorded no result: what pytest said about it, and the logs of
    the hosts it had."""
    e = html.escape
    rec = row.record
    assert rec is not None
    logs = [f'<li><a href="{_href(run_dir / name, run_dir)}">{e(Path(name).name)}</a></li>'
            for name in rec.logs]
    return "\n".join([
        f'<section class="result" id="{slug}">',
        f"<h2>{e(row.incident)} — {e(rec.name)} "
        f'<span class="badge v-{"error" if rec.failed else "notrun"}">{e(row.verdict.upper())}'
        "</span></h2>",
        f"<p>test <code>{e(rec.nodeid)}</code>: {e(rec.outcome)}"
        + (f": {e(rec.message)}" if rec.message else "") + f"; {rec.duration_s} s</p>",
        *(["<h3>Host logs</h3><ul class=\"artefacts\">", *logs, "</ul>"] if logs else []),
        "</section>"])


def render(report: RunReport | list[IncidentResult], run_dir: Path, run_id: str = "") -> str:
    e = html.escape
    report = summary.as_report(report, run_id)
    rows = report.rows()
    status = report.status()
    slugs = [_slug(r.incident, r.label, str(i)) for i, r in enumerate(rows, start=1)]
    head = "".join(f"<th>{e(c)}</th>" for c in summary.COLUMNS)
    body = []
    for slug, row in zip(slugs, rows, strict=True):
        values = summary.cells(row)
        cells = [f'<td><a href="#{slug}">{e(str(values[0]))}</a></td>']
        for col, value in zip(summary.COLUMNS[1:], values[1:], strict=True):
            cls = {"ok": f' class="ok-{OK_CLASS.get(row.ok, "no")}"',
                   "verdict": f' class="verdict-{_slug(str(value))}"'}.get(col, "")
            cells.append(f"<td{cls}>{e(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    sections = [_section(row.result, run_dir, s, row.error) if row.result
                else _test_section(row, s, run_dir)
                for row, s in zip(rows, slugs, strict=True)]
    others = ["<h2>Other tests that failed</h2><ul>"
              + "".join(f"<li><code>{e(n)}</code></li>" for n in report.other_failures)
              + "</ul>"] if report.other_failures else []
    files = [f for f in ("summary.md", "results.json", "junit.xml") if (run_dir / f).exists()]
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>repro run {e(report.run_id)}</title><style>{STYLE}</style></head><body>",
        f'<header class="banner {status.state}">',
        f"<h1>repro run {e(report.run_id)}</h1>"
        f'<p class="headline">{e(status.headline)}</p></header>',
        "<main>", "<h2>Verdicts</h2>",
        "<p>Each incident runs its configuration under test (expected: pass) and its pre-fix "
        "fixture (expected: fail); <b>ok</b> says whether the verdict was the expected one and "
        "its test passed; <b>test</b> is pytest's outcome. A reproduction that recorded no "
        "result has a row of its own: <b>error</b> (it crashed first) or <b>not run</b> "
        "(skipped), with why.</p>",
        f'<table class="verdicts"><tr>{head}</tr>', *body, "</table>", *sections, *others,
        "<h2>Run files</h2><ul>"
        + "".join(f'<li><a href="{quote(f)}">{e(f)}</a></li>' for f in files) + "</ul>",
        "</main></body></html>", ""])


def write_html(report: RunReport | list[IncidentResult], run_dir: Path, run_id: str = ""
               ) -> Path:
    path = run_dir / "index.html"
    path.write_text(render(report, run_dir, run_id), encoding="utf-8")
    return path
