"""The cache_restore oracle: a pure function of the history.

The contract of the restore step: exit 0 means "restored" (every target holds the whole
cache); a non-zero exit must name, on its output, each target it could not restore. The
verdict, from the cache's manifest, the step's exit code and output, every target's tree
(hashed after the step) and the build host's heartbeat:

  fail  the build host dropped off the network for longer than `max_gap_s`, or rebooted;
        data loss: the step exited 0 and a target's tree is partial or corrupt (the files
        missing are named: quiet data loss made loud);
        the step failed without naming a target it left incomplete;
        over-reporting: the step failed naming a target whose tree is complete (a target
        reported lost that holds the whole cache: the build redoes or abandons good work,
        and a step that always says "failed" for everyone tells nothing);
        the step failed although nothing was cut (an unimpaired restore must work), or,
        with a cut, it left a target incomplete that was not cut (only the cut target may
        be lost);
        the step ran over `budget_s` (or was killed past it) and would have, even with
        the time its host was starved of CPU taken out (below);
  inconclusive  a cut was asked for and did not land mid-stream (the stream to that target
        never reached the byte at which it is cut), or the observer starved for longer than
        `max_gap_s` (a gap could have gone unseen), or the step ran over its budget only
        because the build host was starved of CPU: nothing proves the step then.

CPU starvation, from observations only: the heartbeat's ssh leg runs `cat` on the build
host every interval; a round trip over STARVED_RTT_S (a second to fork and run `cat`, at
least ten times its idle round trip here) or one unanswered while the tcp leg answered is
a stretch the host could not run its processes (its CPU quota and the machine's load hold
it off). The time of those stretches inside the step is the step's starved time; the
budget is judged on the step's wall time minus it. A step that hangs (waits on a dead
stream, sleeps) leaves the host idle and its round trips fast: it still fails.

Composed (repro.harness.rules) of: the figures; reachability; data loss; unnamed failures;
over-reporting; a failure with nothing cut, or of a target not cut; the budget (CPU
starvation taken out); then why the run proves nothing. A target is named when its ssh
destination appears in the output as a word of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from repro.harness.checks import Gap, Reboot, Verdict, liveness_gaps
from repro.harness.history import Event, of_kind
from repro.harness.probes.heartbeat import leg
from repro.harness.rules import (
    Findings,
    compose,
    fail,
    fault_events,
    gaps_over,
    inconclusive,
    merge,
    observer_starved,
    over_budget,
    rebooted,
)

FAULT = "cut"
STREAMING_BYTES = 64 * 1024  # a target that received this much in one sample was streaming
SHOW_FILES = 8               # files named in a reason (all of them are in the figures)
STARVED_RTT_S = 1.0          # an ssh round trip (`cat` of the boot id) this slow: host starved


@dataclass(frozen=True)
class Params:
    build: str
    targets: tuple[str, ...]
    budget_s: float
    max_gap_s: float


@dataclass(frozen=True)
class Tree:
    """One target's DEST against the manifest."""

    target: str
    missing: list[str]
    corrupt: list[str]
    answered: bool = True

    @property
    def complete(self) -> bool:
        return self.answered and not self.missing and not self.corrupt


@dataclass(frozen=True)
class Observed:
    manifest: dict[str, str]
    trees: dict[str, Tree]
    exit_code: int | None
    elapsed_s: float | None
    output: str
    probes: list[Event]
    cut_target: str            # "" when no cut was asked for
    cut: dict[str, object] = field(default_factory=dict)   # its fault.measure
    peak_streams: int = 0      # most targets receiving data at once (the meter)
    mtu: int | None = None     # the build host's, after its host init
    step_end: float = 0.0      # when the step returned (its op event)

    @property
    def step_start(self) -> float:
        return self.step_end - float(self.elapsed_s or 0.0)

    @property
    def incomplete(self) -> list[Tree]:
        return [t for t in self.trees.values() if not t.complete]

    def named(self, target: str) -> bool:
        return re.search(rf"(?<![\w.-]){re.escape(target)}(?![\w.-])", self.output) is not None


def check(events: list[Event], p: Params) -> Verdict:
    o = observe(events, p)
    if o is None:
        return compose(inconclusive("the restore step never ran: nothing to judge"))
    return compose(_figures(o, p), _reachable(o, p), _data_loss(o), _unnamed(o),
                   _over_reported(o), _failed_uncut(o), _lost_uncut(o), _budget(o, p),
                   _not_in_effect(o, p))


def observe(events: list[Event], p: Params) -> Observed | None:
    steps = [e for e in of_kind(events, "op") if e.get("name") == "restore"]
    caches = of_kind(events, "cache")
    if not steps or not caches:
        return None
    manifest: dict[str, str] = dict(caches[-1].get("files") or {})
    trees = {}
    seen = {e.host: e for e in of_kind(events, "tree")}
    for target in p.targets:
        e = seen.get(target)
        files: dict[str, str] = dict(e.get("files") or {}) if e else {}
        trees[target] = Tree(target, [f for f in manifest if f not in files],  # tar's order
                             [f for f, h in manifest.items() if f in files and files[f] != h],
                             bool(e and e.get("answered")))
    step = steps[-1]
    starts = fault_events(events, "start", FAULT)
    measures = fault_events(events, "measure", FAULT)
    return Observed(manifest, trees, step.get("exit_code"), step.get("elapsed_s"),
                    str(step.get("output") or ""),
                    [e for e in of_kind(events, "probe") if e.host == p.build],
                    starts[-1].host if starts else "",
                    dict(measures[-1].fields) if measures else {}, peak_streams(events),
                    next((int(e.get("mtu")) for e in of_kind(events, "observe")
                          if e.host == p.build and e.get("mtu")), None), step.t)


def peak_streams(events: list[Event]) -> int:
    """The most targets that received data in the same sample interval of the meter."""
    rounds: dict[float, dict[str, int]] = {}
    for e in of_kind(events, "series"):
        if e.get("bytes") is not None:
            rounds.setdefault(e.t, {})[e.host] = int(e.get("bytes"))
    peak, last = 0, dict[str, int]()
    for t in sorted(rounds):
        now = rounds[t]
        peak = max(peak, sum(1 for h, n in now.items() if n - last.get(h, 0) >= STREAMING_BYTES))
        last = now
    return peak


def _lost(tree: Tree) -> str:
    shown = ", ".join(tree.missing[:SHOW_FILES]) + (
        f" and {len(tree.missing) - SHOW_FILES} more" if len(tree.missing) > SHOW_FILES else "")
    corrupt = f"; {len(tree.corrupt)} corrupt ({', '.join(tree.corrupt[:SHOW_FILES])})" \
        if tree.corrupt else ""
    missing = f"{len(tree.missing)} missing ({shown})" if tree.missing else "none missing"
    return missing + corrupt


def _figures(o: Observed, p: Params) -> Findings:
    lost = {t.target: t.missing + t.corrupt for t in o.incomplete}
    return Findings(figures={
        "exit_code": o.exit_code,
        "elapsed_s": o.elapsed_s,
        "targets": len(p.targets),
        "targets_complete": len(p.targets) - len(o.incomplete),
        "targets_incomplete": [t.target for t in o.incomplete],
        "files": len(o.manifest),
        "files_lost": sum(len(v) for v in lost.values()),
        "lost": lost if o.exit_code == 0 else {},   # behind an exit 0: the data loss
        "cut_target": o.cut_target or None,
        "cut_fired": o.cut.get("fired") if o.cut_target else None,
        "cut_at_mb": round(int(str(o.cut.get("seen_bytes", 0))) / 1e6, 2) if o.cut else None,
        "longest_gap_s": round(max((g.length for g in _gaps(o)), default=0.0), 3),
        "peak_streams": o.peak_streams,
        "build_mtu": o.mtu,
    })


def _gaps(o: Observed) -> list[Gap]:
    return liveness_gaps(leg(o.probes, "tcp"))


def _reachable(o: Observed, p: Params) -> Findings:
    def say_gap(g: Gap) -> str:
        tail = " and had not come back when observation ended" if g.ongoing else ""
        return (f"{g.host} dropped off the network for {g.length:.2f} s "
                f"(limit {p.max_gap_s:g} s){tail}")

    def say_reboot(r: Reboot) -> str:
        return f"{r.host} rebooted during the restore (boot id {r.old[:8]} -> {r.new[:8]})"
    return merge(gaps_over(leg(o.probes, "tcp"), p.max_gap_s, say=say_gap),
                 rebooted(leg(o.probes, "ssh"), say=say_reboot))


def _data_loss(o: Observed) -> Findings:
    if o.exit_code != 0:
        return Findings()
    return fail(*(f"data loss: the restore exited 0 (\"restored\") but {t.target} holds "
                  f"{len(o.manifest) - len(t.missing) - len(t.corrupt)} of {len(o.manifest)} "
                  f"files intact: {_lost(t)}" if t.answered else
                  f"data loss: the restore exited 0 but {t.target}'s tree could not be read"
                  for t in o.incomplete))


def _unnamed(o: Observed) -> Findings:
    if o.exit_code in (0, None):
        return Findings()
    return fail(*(f"the restore failed (exit {o.exit_code}) without naming {t.target}, which "
                  f"it left incomplete: {_lost(t)}" for t in o.incomplete
                  if not o.named(t.target)))


def _over_reported(o: Observed) -> Findings:
    """A failed step must name only what it could not restore: a complete target it names
    is reported lost although it holds the whole cache."""
    if o.exit_code in (0, None):
        return Findings()
    return fail(*(f"over-reporting: the restore failed (exit {o.exit_code}) naming "
                  f"{t.target}, whose tree is complete ({len(o.manifest)} of "
                  f"{len(o.manifest)} files intact)" for t in o.trees.values()
                  if t.complete and o.named(t.target)))


def _lost_uncut(o: Observed) -> Findings:
    """With a cut, only the cut target may be left incomplete (an unnamed one is already
    `_unnamed`'s; behind exit 0, `_data_loss`'s)."""
    if o.exit_code in (0, None) or not o.cut_target:
        return Findings()
    return fail(*(f"the restore failed (exit {o.exit_code}) and left {t.target} incomplete, "
                  f"which was not cut (only {o.cut_target} was): {_lost(t)}"
                  for t in o.incomplete if t.target != o.cut_target and o.named(t.target)))


def _failed_uncut(o: Observed) -> Findings:
    if o.exit_code in (0, None) or o.cut_target:
        return Findings()
    tail = " | ".join(o.output.strip().splitlines()[-3:])
    return fail(f"the restore failed (exit {o.exit_code}) although nothing was cut: "
                f"{tail or '(no output)'}")


def starved_s(o: Observed) -> float:
    """Seconds of the step the build host was starved of CPU, by the heartbeat's ssh leg:
    each round whose round trip took over STARVED_RTT_S, or that went unanswered while the
    tcp leg answered (the host on the network but not running its processes), counts from
    the previous ssh round to it, clipped to the step."""
    ssh = sorted(leg(o.probes, "ssh"), key=lambda e: e.t)
    tcp = leg(o.probes, "tcp")
    total, prev = 0.0, o.step_start
    for e in ssh:
        if e.t > o.step_end:
            break
        slow = e.get("ok") and float(e.get("rtt_s") or 0.0) > STARVED_RTT_S
        unanswered = not e.get("ok") and any(
            x.get("ok") for x in tcp if prev <= x.t <= e.t)
        if e.t > o.step_start and (slow or unanswered):
            total += e.t - max(prev, o.step_start)
        prev = max(prev, e.t)
    return round(min(total, float(o.elapsed_s or 0.0)), 3)


def _budget(o: Observed, p: Params) -> Findings:
    """Over budget is a failure when the step would have been over it with the time its
    host was starved of CPU taken out; inconclusive when only that time put it over."""
    elapsed = float(o.elapsed_s or 0)
    starved = starved_s(o)
    figures = {"starved_s": starved}
    killed = o.exit_code is None
    if elapsed <= p.budget_s and not killed:
        return Findings(figures=figures)
    if elapsed - starved <= p.budget_s:
        what = "was killed" if killed else "ran"
        return Findings(figures=figures, inconclusive=[
            f"the restore {what} at {elapsed:.0f} s, over its {p.budget_s:g} s budget, but "
            f"its build host was starved of CPU for {starved:.1f} s of it (ssh round trips "
            f"over {STARVED_RTT_S:g} s or unanswered): the budget cannot be judged"])
    if killed:
        return Findings(figures=figures, failures=[
            f"the restore was still running {elapsed:.0f} s after it started and was killed "
            f"(budget {p.budget_s:g} s)" + _starved_note(starved)])
    return merge(Findings(figures=figures),
                 over_budget("the restore", elapsed, p.budget_s, _starved_note(starved)))


def _starved_note(starved: float) -> str:
    return f"; {starved:.1f} s of it starved of CPU, still over without it" if starved else ""


def _not_in_effect(o: Observed, p: Params) -> Findings:
    found = observer_starved(leg(o.probes, "tcp"), p.max_gap_s)
    if o.cut_target and not o.cut.get("fired"):
        found = merge(found, inconclusive(
            f"the cut of {o.cut_target} did not land mid-stream: it received "
            f"{int(str(o.cut.get('seen_bytes', 0))):,} bytes, the cut was at "
            f"{int(str(o.cut.get('after_bytes', 0))):,}"))
    return found
