"""The single_branch oracle: a pure function of the history.

Events it reads (written by scenario.py): one `op` name=checkout per
repository shape tried, with the shape (`shape`, `describe`, `size`,
`phase`), the commit asked (`branch`, `back`, `commit`), what the step did
(`exit_code`, `head`: the commit WORKDIR was at afterwards, `output`) and
whether the server served that repository (`served`: `git ls-remote` from
the build host showed the branch at its tip after the step); and at most one
`op` name=minimal: the first failing shape Hypothesis met (`first_*`) and the
one it shrank that to.

Verdict. Only shapes the server served count. Pass when every one ended with
exit 0 and WORKDIR at COMMIT. Fail otherwise, naming how many failed, the
smallest repository that shows it, and, apart, any branch tip that was not
reached: that one is the single-branch mechanism (an older commit is out of
reach of every depth-1 clone). Inconclusive when a shape was not served (the
step's result there proves nothing), when no served shape remains, or when
no served shape asked for a branch's tip or for an older commit: the property
was never exercised where the incident lives.

Composed (repro.harness.rules) of the figures and four rules: COMMIT reached, branch tips reached
(failures, in that order), shapes served, the incident's case exercised (inconclusive).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from repro.harness.checks import Verdict
from repro.harness.history import Event, of_kind
from repro.harness.rules import Findings, compose, fail, inconclusive


@dataclass(frozen=True)
class Params:
    pass


def _ok(e: Event) -> bool:
    return e.get("exit_code") == 0 and bool(e.get("commit")) and e.get("head") == e.get("commit")


def _branch_tip(e: Event) -> bool:
    return e.get("branch") != "master" and int(e.get("back", 0)) == 0


def _smallest(events: list[Event]) -> Event:
    return min(events, key=lambda e: tuple(e.get("size") or ()))


def _shown(e: Event) -> str:
    return (f"{e.get('describe')} -> exit {e.get('exit_code')}, WORKDIR at "
            f"{e.get('head') or 'nothing'} instead of {str(e.get('commit'))[:12]}: "
            f"{str(e.get('output') or '').strip()[-200:]}")


def _figures(ops: list[Event], served: list[Event], failing: list[Event],
             events: list[Event]) -> Findings:
    figures: dict[str, object] = {
        "shapes_tried": len(ops), "shapes_unserved": len(ops) - len(served),
        "shapes_failing": len(failing),
        "branch_tips_tried": sum(map(_branch_tip, served)),
        "branch_tips_failing": sum(map(_branch_tip, failing)),
        "older_tried": sum(int(e.get("back", 0)) > 0 for e in served),
        "median_checkout_s": round(statistics.median(float(e.get("elapsed_s") or 0)
                                                     for e in ops), 2) if ops else None}
    shrunk = [e for e in of_kind(events, "op") if e.get("name") == "minimal"]
    if shrunk:
        figures["hypothesis_first_failing"] = shrunk[-1].get("first_describe")
        figures["hypothesis_shrunk_to"] = shrunk[-1].get("describe")
    if failing:
        figures["smallest_failing"] = _smallest(failing).get("describe")
    return Findings(figures=figures)


def commit_reached(served: list[Event], failing: list[Event]) -> Findings:
    """Every served shape left WORKDIR at COMMIT; else how many did not, and the smallest."""
    if not failing:
        return Findings()
    return fail(f"{len(failing)} of {len(served)} repository shapes: the step did not leave "
                "WORKDIR at COMMIT",
                f"smallest repository that shows it: {_shown(_smallest(failing))}")


def branch_tips_reached(served: list[Event], failing: list[Event]) -> Findings:
    """A branch's tip not reached is named apart: the single-branch mechanism."""
    tips = [e for e in failing if _branch_tip(e)]
    if not tips:
        return Findings()
    return fail(f"{len(tips)} of {sum(map(_branch_tip, served))} branch tips not reached "
                f"(only the default branch arrived: the single-branch mechanism), the "
                f"smallest: {_shown(_smallest(tips))}")


def shapes_served(ops: list[Event], served: list[Event]) -> Findings:
    """A shape the git server did not serve proves nothing about the step."""
    if len(served) == len(ops):
        return Findings()
    return inconclusive(f"the git server did not serve {len(ops) - len(served)} of {len(ops)} "
                        "shapes (ls-remote from the build host did not show the branch at its "
                        "tip): the step's result there proves nothing")


def incident_exercised(served: list[Event]) -> Findings:
    """Some served shape asked for a branch's tip, and some for an older commit."""
    if not served:
        return inconclusive("no checkout ran against a repository the git server served")
    found = Findings()
    if not any(map(_branch_tip, served)):
        found.inconclusive.append("no shape asked for the tip of a branch other than master: "
                                  "the incident's case was never tried")
    if not any(int(e.get("back", 0)) > 0 for e in served):
        found.inconclusive.append("no shape asked for an older commit (below a branch's tip)")
    return found


def check(events: list[Event], p: Params) -> Verdict:
    ops = [e for e in of_kind(events, "op") if e.get("name") == "checkout"]
    served = [e for e in ops if e.get("served") is True]
    failing = [e for e in served if not _ok(e)]
    return compose(_figures(ops, served, failing, events), commit_reached(served, failing),
                   branch_tips_reached(served, failing), shapes_served(ops, served),
                   incident_exercised(served))
