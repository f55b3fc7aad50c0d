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

Several configurations may share one loss fault (side by side): only the
directions touching `Params.host` are judged.

Verdict. Inconclusive when the loss did not take effect (calibration or the
whole window's counters more than 2 points off, or too few packets), when the
step under loss never ran, or when the cancel was never exercised (the step
had ended before it). Fail when the step cannot check out COMMIT even without
loss; when under loss it still ran at twice the budget (hung: the incident),
ended after the budget, exited 0 away from COMMIT, or exited leaving git
processes behind; when a cancel left the
step or any git child alive after the grace time. Pass otherwise: under loss
the step finished at COMMIT, or gave up by itself (non-zero exit) in budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repro.checks import Verdict
from repro.faults.loss import judge_loss
from repro.history import Event, of_kind


@dataclass(frozen=True)
class Params:
    commit: str
    budget_s: float
    cancel_grace_s: float
    loss: float
    host: str = ""  # the build host: only its link's directions count (others share the fault)


def _ops(events: list[Event], name: str, run: str, phase: str) -> list[Event]:
    return [e for e in of_kind(events, "op") if e.get("name") == name and e.get("run") == run
            and e.get("phase") == phase]


def _one(events: list[Event], name: str, run: str, phase: str) -> Event | None:
    found = _ops(events, name, run, phase)
    return found[-1] if found else None


def _loss_shortfalls(events: list[Event], p: Params) -> tuple[list[str], dict[str, Any]]:
    starts = [e for e in of_kind(events, "fault.start") if e.get("fault") == "loss"]
    if not starts:
        return ["no packet loss was injected"], {}
    out = [f"loss calibration: {starts[-1].get('shortfall')}"] if starts[-1].get("shortfall") \
        else []
    measures = [e for e in of_kind(events, "fault.measure") if e.get("fault") == "loss"]
    if not measures:
        return [*out, "the loss fault's counters were never read back"], {}
    m = measures[-1]
    achieved = {}
    directions = [d for d in m.get("directions", [])
                  if not p.host or p.host in (d.get("src"), d.get("dst"))]
    mechanisms = sorted({str(d.get("mechanism")) for d in directions})
    for d in directions:
        why = judge_loss(p.loss, int(d["offered"]), int(d["dropped"]), int(d.get("oversize", 0)),
                         int(m.get("required", 5000)))
        key = f"{d['src']} -> {d['dst']}"
        achieved[key] = f"{d['dropped']}/{d['offered']} = {d['dropped'] / max(1, d['offered']):.1%}"
        if why:
            out.append(f"loss {key}: {why}")
    return out, {"loss_target": p.loss, "loss_achieved": achieved, "loss_mechanisms": mechanisms}


def _judge_cancel(events: list[Event], run: str, p: Params, failures: list[str]) -> dict[str, Any]:
    sent, done = _one(events, "cancel", run, "sent"), _one(events, "cancel", run, "done")
    if sent is None:
        return {}
    if done is None:
        failures.append(f"{run} run: a cancel was sent but its outcome was never observed")
        return {}
    after = done.get("ended_after_s")
    survivors = done.get("survivors") or []
    if after is None or after > p.cancel_grace_s or survivors:
        alive = ", ".join(f"{c} (pid {pid})" for pid, c, _ in survivors) or "the step"
        failures.append(f"{run} run: SIGTERM to the step's process group at "
                        f"{sent.get('elapsed_s', 0):.1f} s did not end it within "
                        f"{p.cancel_grace_s:g} s: still alive: {alive}")
    return {f"{run}_cancel_ended_after_s": after}


def check(events: list[Event], p: Params) -> Verdict:
    failures: list[str] = []
    inconclusive, figures = _loss_shortfalls(events, p)
    figures = dict(figures)

    base = _one(events, "checkout", "baseline", "exit")
    if base is not None:
        figures["baseline_s"] = base.get("elapsed_s")
        if base.get("exit_code") != 0 or base.get("head") != p.commit:
            failures.append(f"without any loss the step does not check out COMMIT: exit "
                            f"{base.get('exit_code')}, WORKDIR at {base.get('head') or 'nothing'}"
                            f": {str(base.get('output', '')).strip()[-200:]}")

    if _one(events, "checkout", "budget", "start") is None:
        inconclusive.append("the step never ran under loss")
    hung = _one(events, "checkout", "budget", "hung")
    end = _one(events, "checkout", "budget", "exit")
    if hung is not None:
        figures["under_loss_s"] = f">{hung.get('elapsed_s', 0):.0f} (hung)"
        failures.append(f"under {p.loss:.0%} loss the step was still running after "
                        f"{hung.get('elapsed_s', 0):.0f} s, twice its {p.budget_s:g} s budget: "
                        "hung, with no timeout of its own (the incident)")
    elif end is not None:
        elapsed = float(end.get("elapsed_s") or 0.0)
        code, head = end.get("exit_code"), end.get("head")
        figures.update(under_loss_s=round(elapsed, 1), under_loss_exit=code)
        if elapsed > p.budget_s:
            failures.append(f"under {p.loss:.0%} loss the step ran {elapsed:.0f} s, over its "
                            f"{p.budget_s:g} s budget (exit {code})")
        elif code == 0 and head != p.commit:
            failures.append(f"the step exited 0 but left WORKDIR at {head or 'nothing'}, "
                            f"not COMMIT {p.commit[:12]}")
        left = [f"{c} (pid {pid})" for pid, c, _ in end.get("left_running") or []]
        if left:
            failures.append(f"the step exited ({code}) but left running: {', '.join(left)}")
    figures.update(_judge_cancel(events, "budget", p, failures))

    if _one(events, "checkout", "cancel", "start") is not None:
        if _one(events, "cancel", "cancel", "sent") is None:
            ended = _one(events, "checkout", "cancel", "exit")
            at = f" at {ended.get('elapsed_s', 0):.1f} s" if ended else ""
            inconclusive.append(f"the cancel run's step ended by itself{at}, before the "
                                "cancel: cancel was not exercised")
        figures.update(_judge_cancel(events, "cancel", p, failures))

    caps = of_kind(events, "capture")
    if caps:
        c = caps[-1]
        for key in ("retransmissions", "longest_retransmission_gap_s", "longest_backoff_run",
                    "longest_backoff_gaps_s", "zero_windows", "resets"):
            if key in c.fields:
                figures[key] = c.get(key)
    return Verdict.judge(failures, inconclusive, figures)
