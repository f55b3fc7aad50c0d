"""The single_branch oracle: a pure function of the history.

Events it reads (written by scenario.py): one `op` name=checkout per
repository shape tried, with the shape (`shape`, `describe`, `size`), the
commit asked (`branch`, `back`, `commit`) and what the step did (`exit_code`,
`head`: the commit WORKDIR was at afterwards, `output`); and at most one `op`
name=minimal, the failing shape Hypothesis shrank to.

Verdict. Pass when every shape ended with exit 0 and WORKDIR at COMMIT.
Fail otherwise, naming how many shapes failed and the smallest repository
that shows it. Inconclusive when nothing ran, or when no shape asked for a
commit off master or for an older commit: the property was never exercised
where the incident lives.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from repro.checks import Verdict
from repro.history import Event, of_kind


@dataclass(frozen=True)
class Params:
    pass


def _ok(e: Event) -> bool:
    return e.get("exit_code") == 0 and bool(e.get("commit")) and e.get("head") == e.get("commit")


def check(events: list[Event], p: Params) -> Verdict:
    ops = [e for e in of_kind(events, "op") if e.get("name") == "checkout"]
    if not ops:
        return Verdict.judge([], ["no checkout ran: nothing was observed"], {})
    failing = [e for e in ops if not _ok(e)]
    off_master = [e for e in ops if e.get("branch") != "master"]
    older = [e for e in ops if int(e.get("back", 0)) > 0]
    figures: dict[str, object] = {
        "shapes_tried": len(ops), "shapes_failing": len(failing),
        "off_master_tried": len(off_master), "older_tried": len(older),
        "median_checkout_s": round(statistics.median(float(e.get("elapsed_s") or 0)
                                                     for e in ops), 2)}
    inconclusive = []
    if not off_master:
        inconclusive.append("no shape asked for a commit off master: the incident's case "
                            "was never tried")
    if not older:
        inconclusive.append("no shape asked for an older commit (below a branch's tip)")
    failures = []
    if failing:
        smallest = min(failing, key=lambda e: tuple(e.get("size") or ()))
        figures["smallest_failing"] = smallest.get("describe")
        shrunk = [e for e in of_kind(events, "op") if e.get("name") == "minimal"]
        if shrunk:
            figures["hypothesis_shrunk_to"] = shrunk[-1].get("describe")
        failures.append(f"{len(failing)} of {len(ops)} repository shapes: the step did not leave "
                        "WORKDIR at COMMIT")
        failures.append(
            f"smallest repository that shows it: {smallest.get('describe')} -> exit "
            f"{smallest.get('exit_code')}, WORKDIR at {smallest.get('head') or 'nothing'} "
            f"instead of {str(smallest.get('commit'))[:12]}: "
            f"{str(smallest.get('output') or '').strip()[-200:]}")
    return Verdict.judge(failures, inconclusive, figures)
