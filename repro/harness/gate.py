"""`repro gate`: does a candidate machine image bring an incident back?

Model: the gate runs the chosen incidents' configurations under test (the
fixed ones, fixtures/default.toml, unless --config names another file) once
on the baseline image and once on the candidate, each as its own pytest run
(the incidents' markers, `--repro-direction under-test`: the plugin skips
every run of a shipped fixture, whatever the test is called; the image's
provider through --repro-provider: a test that forces another backend skips;
reports under reports/<gate run>/<side>/), one after the other (a run wants
the machine's cores to itself). Each side keys its results by incident and
provider: only a result of a configuration under test (expected pass) on the
image's own provider counts (`side_results`), so no verdict from another
backend's hosts (a local QEMU guest on a Docker gate) can stand for the image.
A pass whose test then failed an assertion counts as unknown. `compare` lines
the sides up:

  ok          passes on the candidate, and on the baseline (or the baseline
              gave no verdict: the candidate showed the fixed behaviour)
  REGRESSION  passed on the baseline, fails on the candidate (or gives no
              result at all: a candidate that cannot even host the run
              regresses) -> exit 1
  not judged  the candidate's run was inconclusive (or its checker crashed),
              or it did not pass and the baseline gave no verdict: nothing
              shows the candidate is fine -> exit 1
  fixed       failed on the baseline, passes on the candidate
  fails on both  reported, not a regression (the baseline is no reference)

A result that is inconclusive, unknown or missing says the measurement failed,
not the image (a starved observer, a fault that missed its target): such
incidents run once more on that side before the comparison (`retries`). A
failure is never run again, even with inconclusive reasons beside it
(Verdict.judge ranks it first): one observed failure is the incident.

The gate writes gate.md (the side-by-side table and the candidate's
reasons), gate.json and junit.xml (one test case per incident, a failure per
regression) into reports/<gate run>/ and points reports/latest at it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tabulate import tabulate

from repro.harness import cleanup, doctor, images, incidents
from repro.harness.checks import Outcome, Verdict
from repro.harness.errors import ConfigError
from repro.harness.images import ImageRef
from repro.harness.report.record import RunReport, read_report
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run, point_latest, start_run

SIDES = ("baseline", "candidate")
DIRECTION = "under-test"  # --repro-direction: only the configurations under test run
RERUN = (Outcome.INCONCLUSIVE, Outcome.UNKNOWN)  # the measurement failed: run once more
RANK = {Outcome.PASS: 0, Outcome.INCONCLUSIVE: 1, Outcome.UNKNOWN: 1, Outcome.FAIL: 2}
STOP_GRACE_S = 90.0  # a side past its timeout gets this long to clean up after SIGTERM


@dataclass
class Side:
    name: str
    image: ImageRef
    reports: Path
    exit_code: int | None = None
    results: dict[str, IncidentResult] = field(default_factory=dict)  # incident -> result
    errors: dict[str, str] = field(default_factory=dict)  # incident -> pytest's failure line
    log: Path | None = None
    retried: list[str] = field(default_factory=list)  # incidents run again (inconclusive)
    ignored: list[str] = field(default_factory=list)  # results not from the image's hosts


@dataclass(frozen=True)
class Row:
    incident: str
    baseline: str  # outcome, or "no result"
    candidate: str
    status: str    # ok | REGRESSION | not judged | fixed | fails on both
    detail: tuple[str, ...] = ()  # "candidate: <reason>", "baseline: <why no result>"
    baseline_figures: dict[str, object] = field(default_factory=dict)
    candidate_figures: dict[str, object] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        return self.status in ("REGRESSION", "not judged")


def select_incidents(image: ImageRef, wanted: list[str]) -> list[str]:
    """The incidents to gate on: those asked for (each must run on the image's backend)."""
    unknown = [n for n in wanted if n not in incidents.INCIDENTS]
    if unknown:
        raise ConfigError(f"unknown incident {', '.join(unknown)}; known: "
                          f"{', '.join(incidents.INCIDENTS)}")
    able = [n for n in incidents.INCIDENTS if image.backend in doctor.incident_backends(n)]
    chosen = wanted or able
    unable = [n for n in chosen if n not in able]
    if unable:
        raise ConfigError(f"{', '.join(unable)} cannot run on {image.backend} images; "
                          f"on {image.backend}: {', '.join(able) or 'none'}")
    if not chosen:
        raise ConfigError(f"no incident runs on {image.backend} images")
    return chosen


def pytest_argv(image: ImageRef, chosen: list[str], reports: Path, config: Path | None,
                profile: str) -> list[str]:
    from repro.harness.plugin import collect_paths  # the incidents' folders, wherever installed
    markers = " or ".join(incidents.INCIDENTS[n].marker for n in chosen)
    argv = [sys.executable, "-m", "pytest", *collect_paths(chosen), "-m", markers,
            "--repro-direction", DIRECTION, "--repro-provider", image.provider,
            "--repro-profile", profile,
            "--repro-reports", str(reports), "--junitxml", str(reports / "pytest.xml"),
            "-p", "no:cacheprovider", "-q"]
    return argv + (["--repro-config", str(config)] if config else [])


def run_side(side: Side, chosen: list[str], run: Run, config: Path | None, profile: str,
             timeout_s: float, retries: int = 1) -> Side:
    """Run the side; incidents that came back inconclusive or without a result (the
    measurement failed, not the image) run again, up to `retries` more times."""
    todo = list(chosen)
    for attempt in range(retries + 1):
        reports = side.reports / (f"retry-{attempt}" if attempt else "")
        results, errors, side.exit_code, side.log = _attempt(side, todo, reports, run, config,
                                                             profile, timeout_s)
        side.results.update(results)
        side.errors.update(errors)
        for n in results:
            side.errors.pop(n, None)
        todo = [n for n in todo if n not in results or results[n].verdict.outcome in RERUN]
        if not todo or side.exit_code is None or attempt == retries:
            break  # (a side that timed out is not run again)
        side.retried += todo
    return side


def _attempt(side: Side, chosen: list[str], reports: Path, run: Run, config: Path | None,
             profile: str, timeout_s: float
             ) -> tuple[dict[str, IncidentResult], dict[str, str], int | None, Path]:
    reports.mkdir(parents=True, exist_ok=True)
    log_path = reports / "pytest.log"
    env = os.environ | side.image.environment(run.scratch)
    with log_path.open("w") as log:
        proc = subprocess.Popen(pytest_argv(side.image, chosen, reports, config, profile),
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        code: int | None
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.terminate()  # SIGTERM: the run heals its faults and removes its hosts
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_GRACE_S)
                cleanup.reap(all_runs=False)  # what the killed run left
            code = None
    if code in (3, 4, 5):  # internal error, usage error, nothing collected
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise ConfigError(f"{side.name} run on {side.image} could not start: {tail[0]} "
                          f"(log: {log_path})")
    latest = reports / "latest" / "results.json"
    report = read_report(latest) if latest.is_file() else None
    results: dict[str, IncidentResult] = {}
    errors = _pytest_failures(reports / "pytest.xml")
    if report is not None:
        results, ignored = side_results(report, side.image, chosen)
        side.ignored += ignored
        errors = _test_failures(report) | errors
    if code is None:  # the timeout first: what pytest said then came of our SIGTERM
        errors = {n: f"timed out after {timeout_s:.0f} s"
                  + (f" ({errors[n]})" if n in errors else "") for n in chosen}
    return results, errors, code, log_path


def side_results(report: RunReport, image: ImageRef, chosen: list[str]
                 ) -> tuple[dict[str, IncidentResult], list[str]]:
    """incident -> the result that judges the image: a configuration under test (expected
    pass), not a superseded attempt, run on the image's own provider (the worst such one,
    should there be several); and what was set aside as not from the image's hosts."""
    found: dict[str, IncidentResult] = {}
    ignored: list[str] = []
    records = {t.nodeid: t for t in report.tests}
    for r in report.results:
        if r.superseded or r.expected is not Outcome.PASS or r.incident not in chosen:
            continue
        if r.provider != image.provider:
            ignored.append(f"{r.incident} {r.label!r} on {r.provider}")
            continue
        rec = records.get(r.test)
        if r.verdict.outcome is Outcome.PASS and rec is not None and rec.failed:
            r = dataclasses.replace(r, verdict=Verdict(
                Outcome.UNKNOWN, (f"the test failed after a pass verdict: {rec.message}",),
                r.verdict.figures))
        prev = found.get(r.incident)
        if prev is None or RANK[r.verdict.outcome] > RANK[prev.verdict.outcome]:
            found[r.incident] = r
    return found, ignored


def _test_failures(report: RunReport) -> dict[str, str]:
    """incident -> why it may have no result: pytest's one line for its first reproduction
    that failed or errored, else the first skip reason (other than a direction not run)."""
    found: dict[str, str] = {}
    for t in report.tests:
        if t.failed:
            found.setdefault(t.incident, f"{t.name}: {t.message}")
    for t in report.tests:
        if t.not_run and t.message and not t.message.startswith("not selected:"):
            found.setdefault(t.incident, f"{t.name} not run: {t.message}")
    return found


def _pytest_failures(junit: Path) -> dict[str, str]:
    """incident -> first line of its failing test's message (repro.<incident>.test_x)."""
    found: dict[str, str] = {}
    if not junit.is_file():
        return found
    for case in ET.parse(junit).iter("testcase"):
        parts = case.get("classname", "").split(".")
        bad = case.find("failure")
        bad = bad if bad is not None else case.find("error")
        if len(parts) > 1 and bad is not None:
            found.setdefault(parts[1], (bad.get("message") or "failed").splitlines()[0][:300])
    return found


def _cell(side: Side, incident: str) -> str:
    r = side.results.get(incident)
    return r.verdict.outcome.value if r else "no result"


def compare(base: Side, cand: Side, chosen: list[str]) -> list[Row]:
    rows = []
    for n in chosen:
        b, c = _cell(base, n), _cell(cand, n)
        b_ok, c_ok = b == Outcome.PASS.value, c == Outcome.PASS.value
        b_judged = b in (Outcome.PASS.value, Outcome.FAIL.value)  # a reference either way
        c_unsure = c in (Outcome.INCONCLUSIVE.value, Outcome.UNKNOWN.value)
        status = ("ok" if c_ok and (b_ok or not b_judged) else "fixed" if c_ok
                  else "not judged" if c_unsure or not b_judged
                  else "REGRESSION" if b_ok else "fails on both")
        br, cr = base.results.get(n), cand.results.get(n)
        detail: tuple[str, ...] = ()
        if not b_ok:
            detail += tuple(f"baseline: {x}" for x in (
                br.verdict.reasons if br else (base.errors.get(n, "no result"),)))
        if not c_ok:
            detail += tuple(f"candidate: {x}" for x in (
                cr.verdict.reasons if cr else (cand.errors.get(n, "no result"),)))
        rows.append(Row(n, b, c, status, detail, dict(br.figures) if br else {},
                        dict(cr.figures) if cr else {}))
    return rows


def _figure(incident: str, figs: dict[str, object]) -> str:
    """The incident's first headline figure (its spec's) that the result has, with unit."""
    spec = incidents.INCIDENTS.get(incident)
    for f in spec.headline if spec else ():
        if figs.get(f.key) is not None and f.unit:
            return f" ({f.key} {figs[f.key]} {f.unit})"
    return ""


def table(rows: list[Row], base: ImageRef, cand: ImageRef, fmt: str = "github") -> str:
    data = [[r.incident, r.baseline + _figure(r.incident, r.baseline_figures),
             r.candidate + _figure(r.incident, r.candidate_figures), r.status] for r in rows]
    return tabulate(data, headers=["incident", f"baseline {base}", f"candidate {cand}", "gate"],
                    tablefmt=fmt)


def write_reports(rows: list[Row], base: Side, cand: Side, out: Path) -> None:
    blocked = [r for r in rows if r.blocks]
    lines = [f"# repro gate: {'BLOCKED' if blocked else 'passed'}", "",
             f"baseline `{base.image}`, candidate `{cand.image}`: each incident's configuration "
             "under test on both; a regression is a pass on the baseline that is not a pass "
             "on the candidate.", "", table(rows, base.image, cand.image), ""]
    for r in rows:
        if r.detail:
            lines += [f"## {r.incident}: {r.status} (baseline {r.baseline}, candidate "
                      f"{r.candidate})", ""]
            lines += [f"- {d}" for d in r.detail] + [""]
    lines += [f"- {s.name} reports: `{s.reports}` (pytest log `{s.log}`)"
              + (f"; run again after an inconclusive result: {', '.join(s.retried)}"
                 if s.retried else "")
              + (f"; set aside (not the image's hosts): {'; '.join(s.ignored)}"
                 if s.ignored else "") for s in (base, cand)]
    (out / "gate.md").write_text("\n".join(lines) + "\n")
    (out / "gate.json").write_text(json.dumps({
        "baseline": str(base.image), "candidate": str(cand.image), "blocked": bool(blocked),
        "rows": [asdict(r) for r in rows]}, indent=2, default=str) + "\n")
    suite = ET.Element("testsuite", name="repro gate", tests=str(len(rows)),
                       failures=str(len(blocked)))
    for r in rows:
        case = ET.SubElement(suite, "testcase", classname=f"repro.gate.{r.incident}",
                             name=f"{cand.image} vs {base.image}")
        if r.blocks:
            failure = ET.SubElement(case, "failure", message=f"{r.status}: {r.baseline} on "
                                    f"the baseline, {r.candidate} on the candidate")
            failure.text = "\n".join(r.detail)
        elif r.status != "ok":
            ET.SubElement(case, "system-out").text = f"{r.status}: " + "; ".join(r.detail)
    ET.ElementTree(suite).write(out / "junit.xml", encoding="utf-8", xml_declaration=True)


def run_gate(baseline: ImageRef, candidate: ImageRef, wanted: list[str], *,
             config: Path | None, profile: str, reports_root: Path, timeout_s: float,
             retries: int = 1,
             say: Callable[[str], None] = print) -> tuple[list[Row], Path]:
    """Run both sides, compare, write the reports; returns the rows and the report dir."""
    if baseline.backend != candidate.backend:
        raise ConfigError(f"baseline and candidate must be the same kind of image "
                          f"({baseline.backend} vs {candidate.backend})")
    for image in (baseline, candidate):
        images.check(image)
    chosen = select_incidents(baseline, wanted)
    run = start_run(reports_root)
    try:
        sides = [Side(name, image, run.reports / name)
                 for name, image in zip(SIDES, (baseline, candidate), strict=True)]
        for side in sides:
            say(f"[gate] {side.name} {side.image}: {', '.join(chosen)} ...")
            run_side(side, chosen, run, config, profile, timeout_s, retries)
            say(f"[gate] {side.name}: " + ", ".join(f"{n} {_cell(side, n)}" for n in chosen))
        rows = compare(sides[0], sides[1], chosen)
        write_reports(rows, sides[0], sides[1], run.reports)
        point_latest(reports_root, run)
    finally:
        run.close()
    return rows, run.reports
