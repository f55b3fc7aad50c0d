"""The slowclone oracle: a pure function of the history.

Events it reads (written by scenario.py):

  op      name=checkout run=<baseline|budget|cancel> phase=start|exit|hung
          exit: exit_code, elapsed_s (measured on the build host), head (WORKDIR's commit),
                left_running (its processes still alive a second after it exited)
          hung: elapsed_s (the step was still running then), processes
  op      name=cancel run=<budget|cancel> phase=sent|done
          sent: elapsed_s (how long the step had run); done: ended_after_s (None: not
          ended), survivors [[pid, comm, cmdline], ...] still alive at the grace limit
  fault.start / fault.measure   fault=loss: the loss asked and the counters measured
  capture                       the retransmission analysis of the build host's capture
  pace    rate_kib_s, tree_bytes (COMMIT's blob), least_transfer_s (the soonest it can come)

Several configurations may share one loss fault (side by side): only the
directions touching `Params.host` are judged.

Verdict. Inconclusive when the loss did not take effect (calibration or the
whole window's counters more than 2 points off, or too few packets), when the
step under loss never ran, when the cancel was never exercised (the step had
ended before it), or when a run under loss had COMMIT sooner than the server's
pace allows (`pace` event: the pace that keeps both runs transferring at the
cancel and at the budget did not hold). Fail when the step cannot check out
COMMIT even without loss; when under loss it still ran at twice the budget
(hung: the incident), ended after the budget, exited 0 away from COMMIT, or
exited leaving git processes behind; when a cancel left the step or any git
child alive after the grace time. Pass otherwise: under loss the step finished
at COMMIT, or gave up by itself (non-zero exit) in budget.

Composed (repro.harness.rules) of, in the order of their reasons: the loss rule, the pace,
the baseline, the step under loss, each run's cancel, and the capture's figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from repro.harness.checks import Verdict
from repro.harness.faults.loss import judge_loss
from repro.harness.history import Event, of_kind
from repro.harness.rules import (
    Findings,
    compose,
    fail,
    fault_events,
    fault_took_effect,
    inconclusive,
    merge,
    over_budget,
)

CAPTURE_FIGURES = ("retransmissions", "longest_retransmission_gap_s", "longest_backoff_run",
                   "longest_backoff_gaps_s", "zero_windows", "resets")


@dataclass(frozen=True)
class Params:
    commit: str
    budget_s: float
    cancel_grace_s: float
    loss: float
    host: str = ""  # the build host: only its link's directions count (others share the fault)


def check(events: list[Event], p: Params) -> Verdict:
    return compose(loss_took_effect(events, p), pace_held(events, p), baseline(events, p),
                   under_loss(events, p), cancel_ended(events, "budget", p), cancel_run(events, p),
                   capture(events))


def _ops(events: list[Event], name: str, run: str, phase: str) -> list[Event]:
    return [e for e in of_kind(events, "op") if e.get("name") == name and e.get("run") == run
            and e.get("phase") == phase]


def _one(events: list[Event], name: str, run: str, phase: str) -> Event | None:
    found = _ops(events, name, run, phase)
    return found[-1] if found else None


# -- the rules ------------------------------------------------------------------------------

def loss_took_effect(events: list[Event], p: Params) -> Findings:
    """The loss was injected, calibrated, and its whole window's counters (read back after
    heal) on the build host's link are within `judge_loss`'s tolerance."""
    injected = fault_took_effect(events, "loss", never="no packet loss was injected",
                                 shortfall="loss calibration")
    if not fault_events(events, "start", "loss"):
        return injected
    measures = fault_events(events, "measure", "loss")
    if not measures:
        return merge(injected, inconclusive("the loss fault's counters were never read back"))
    return merge(injected, _loss_counted(measures[-1], p))


def _loss_counted(m: Event, p: Params) -> Findings:
    found = Findings()
    achieved = {}
    directions = [d for d in m.get("directions", [])
                  if not p.host or p.host in (d.get("src"), d.get("dst"))]
    for d in directions:
        why = judge_loss(p.loss, int(d["offered"]), int(d["dropped"]), int(d.get("oversize", 0)),
                         int(m.get("required", 5000)))
        key = f"{d['src']} -> {d['dst']}"
        achieved[key] = f"{d['dropped']}/{d['offered']} = {d['dropped'] / max(1, d['offered']):.1%}"
        if why:
            found.inconclusive.append(f"loss {key}: {why}")
    found.figures = {"loss_target": p.loss, "loss_achieved": achieved,
                     "loss_mechanisms": sorted({str(d.get("mechanism")) for d in directions})}
    return found


def pace_held(events: list[Event], p: Params) -> Findings:
    """No run under loss had COMMIT sooner than its tree can come at the server's pace.

    The pace (a `pace` event: rate_kib_s, tree_bytes, least_transfer_s) is what makes every
    run still transfer at the cancel and at the budget whatever the loss spares; a step at
    COMMIT sooner than that shows the pace did not hold, and the run did not exercise what
    it judges (inconclusive). Without a `pace` event (an unpaced run) there is nothing to
    judge."""
    paces = of_kind(events, "pace")
    if not paces:
        return Findings()
    least = float(paces[-1].get("least_transfer_s") or 0.0)
    found = Findings(figures={"pace_kib_s": paces[-1].get("rate_kib_s"),
                              "least_transfer_s": least})
    for run in ("budget", "cancel"):
        end = _one(events, "checkout", run, "exit")
        elapsed = float(end.get("elapsed_s") or 0.0) if end else least
        if end and end.get("exit_code") == 0 and end.get("head") == p.commit and elapsed < least:
            found.inconclusive.append(
                f"the {run} run had COMMIT after {elapsed:.1f} s, sooner than its tree "
                f"({paces[-1].get('tree_bytes')} bytes) can come at the server's pace of "
                f"{paces[-1].get('rate_kib_s')} KiB/s ({least:.0f} s): the pace did not hold")
    return found


def baseline(events: list[Event], p: Params) -> Findings:
    """Without any loss the step checks out COMMIT."""
    base = _one(events, "checkout", "baseline", "exit")
    if base is None:
        return Findings()
    found = Findings(figures={"baseline_s": base.get("elapsed_s")})
    if base.get("exit_code") != 0 or base.get("head") != p.commit:
        found.failures.append(f"without any loss the step does not check out COMMIT: exit "
                              f"{base.get('exit_code')}, WORKDIR at "
                              f"{base.get('head') or 'nothing'}: "
                              f"{str(base.get('output', '')).strip()[-200:]}")
    return found


def under_loss(events: list[Event], p: Params) -> Findings:
    """Under loss the step ran, and neither hung (the incident) nor broke its exit rules."""
    found = Findings()
    if _one(events, "checkout", "budget", "start") is None:
        found.inconclusive.append("the step never ran under loss")
    hung = _one(events, "checkout", "budget", "hung")
    end = _one(events, "checkout", "budget", "exit")
    if hung is not None:
        elapsed = hung.get("elapsed_s", 0)
        return merge(found, Findings(
            failures=[f"under {p.loss:.0%} loss the step was still running after "
                      f"{elapsed:.0f} s, twice its {p.budget_s:g} s budget: hung, with no "
                      "timeout of its own (the incident)"],
            figures={"under_loss_s": f">{elapsed:.0f} (hung)"}))
    return merge(found, _exited(end, p)) if end is not None else found


def _exited(end: Event, p: Params) -> Findings:
    """The step ended in budget, at COMMIT when it says it succeeded, and left nothing."""
    elapsed = float(end.get("elapsed_s") or 0.0)
    code, head = end.get("exit_code"), end.get("head")
    found = merge(Findings(figures={"under_loss_s": round(elapsed, 1), "under_loss_exit": code}),
                  over_budget(f"under {p.loss:.0%} loss the step", elapsed, p.budget_s,
                              f" (exit {code})"))
    if not found.failed and code == 0 and head != p.commit:
        found.failures.append(f"the step exited 0 but left WORKDIR at {head or 'nothing'}, "
                              f"not COMMIT {p.commit[:12]}")
    left = [f"{c} (pid {pid})" for pid, c, _ in end.get("left_running") or []]
    if left:
        found.failures.append(f"the step exited ({code}) but left running: {', '.join(left)}")
    return found


def cancel_ended(events: list[Event], run: str, p: Params) -> Findings:
    """A cancel sent to the step ended it and every git child within the grace time."""
    sent, done = _one(events, "cancel", run, "sent"), _one(events, "cancel", run, "done")
    if sent is None:
        return Findings()
    if done is None:
        return fail(f"{run} run: a cancel was sent but its outcome was never observed")
    after = done.get("ended_after_s")
    survivors = done.get("survivors") or []
    found = Findings(figures={f"{run}_cancel_ended_after_s": after})
    if after is None or after > p.cancel_grace_s or survivors:
        alive = ", ".join(f"{c} (pid {pid})" for pid, c, _ in survivors) or "the step"
        found.failures.append(f"{run} run: SIGTERM to the step's process group at "
                              f"{sent.get('elapsed_s', 0):.1f} s did not end it within "
                              f"{p.cancel_grace_s:g} s: still alive: {alive}")
    return found


def cancel_run(events: list[Event], p: Params) -> Findings:
    """The cancel run exercised the cancel (its step was still running) and the cancel
    worked."""
    if _one(events, "checkout", "cancel", "start") is None:
        return Findings()
    found = Findings()
    if _one(events, "cancel", "cancel", "sent") is None:
        ended = _one(events, "checkout", "cancel", "exit")
        at = (f" at {ended.get('elapsed_s') or 0:.1f} s (exit {ended.get('exit_code')})"
              if ended else "")
        found.inconclusive.append(f"the cancel run's step ended by itself{at}, before the "
                                  "cancel: cancel was not exercised")
    return merge(found, cancel_ended(events, "cancel", p))


def capture(events: list[Event]) -> Findings:
    """The retransmission figures of the build host's capture (the last one)."""
    caps = of_kind(events, "capture")
    if not caps:
        return Findings()
    return Findings(figures={k: caps[-1].get(k) for k in CAPTURE_FIGURES if k in caps[-1].fields})
