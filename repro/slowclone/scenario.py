"""The slowclone run: a git server, build hosts, loss between them, the checkout step.

Roles: `gitserver` (git daemon + smart HTTP, a generated repository of
`repo_mb` MB) and one build host per configuration (`build`, or `build1`,
`build2`... when several configurations run side by side: they share the
server, the repository and the loss fault, each has its own link, history
and verdict). The step runs with REPO_URL, BRANCH=master, COMMIT=master's
tip, WORKDIR, and BUDGET_S. Steps:

1. baseline: each configuration's step once without any fault; it must
   check out COMMIT;
2. pace the server (repro.slowclone.pace): from here on no fetch gets more than
   `rate_kib_s`, and COMMIT's tree (sized for it) outlasts twice the budget even
   without loss, so both runs below are certain to be transferring at the cancel
   and at the budget;
3. inject `loss` (bursts of `burst` packets) both ways between the server and
   every build host, measured by calibration (repro.harness.faults.loss); start
   tcpdump on every build host;
4. start each step twice: the *budget* run is watched until it ends or
   until twice `budget_s` (then it is hung, and cancelled); the *cancel* run
   gets SIGTERM on its process group at `cancel_after_s`; the agent on the
   host times how long until the step and every git child are gone;
5. stop the captures, heal (the counters' final reading is recorded),
   analyse each capture (repro.harness.capture.analysis), judge each history.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.harness.capture import Capture, analyse
from repro.harness.checks import Outcome, run_checker
from repro.harness.envelope import Envelope, envelope
from repro.harness.faults.loss import LossModel, PacketLoss, measured_loss
from repro.harness.history import History
from repro.harness.hosts import open_hosts
from repro.harness.hosts.base import Host
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.harness.services.gitserver import BranchSpec, GitServer, RepoSpec
from repro.harness.workloads.checkout import CheckoutStep, StepEnv, remove_agent
from repro.slowclone import check
from repro.slowclone.config import SlowcloneConfig
from repro.slowclone.pace import Pace, paced

INCIDENT = "slowclone"
POLL_S = 0.5
CANCEL_OBSERVE_EXTRA_S = 2.0   # keep looking a little past the grace time, to name survivors
EXIT_SETTLE_S = 1.0            # children of a step that just exited get this long to go
SHARED = ("provider", "loss", "burst", "repo_mb", "transport", "rate_kib_s")


@dataclass
class Item:
    """One configuration in the run."""

    cfg: SlowcloneConfig
    role: str
    env: Envelope
    build: Host | None = None

    @property
    def outdir(self) -> Path:
        return self.env.outdir

    @property
    def history(self) -> History:
        return self.env.history


class Tee(History):
    """A history that writes every event into several (the shared fault's events)."""

    def __init__(self, targets: Sequence[History]):
        super().__init__()
        self.targets = list(targets)

    def append(self, kind: str, host: str = "", t: float | None = None,
               **fields: Any) -> Any:
        for h in self.targets:
            h.append(kind, host, t, **fields)


@dataclass
class _Watch:
    item: Item
    step: CheckoutStep
    run: str
    started: float
    cancel_at: float | None         # seconds after start; None: never cancel (budget run)
    hang_at: float | None           # seconds after start when a still running step is hung
    done: bool = False


def run(run_ctx: Run, cfg: SlowcloneConfig, label: str, expect: Outcome = Outcome.PASS
        ) -> IncidentResult:
    return run_side_by_side(run_ctx, [(cfg, label, expect)])[0]


def run_side_by_side(run_ctx: Run, entries: Sequence[tuple[SlowcloneConfig, str, Outcome]]
                     ) -> list[IncidentResult]:
    """Several configurations against one server under one fault; each gets its own verdict."""
    first = entries[0][0]
    if any(getattr(c, k) != getattr(first, k) for c, _, _ in entries for k in SHARED):
        return [r for e in entries for r in run_side_by_side(run_ctx, [e])]
    roles = ["build"] if len(entries) == 1 else [f"build{i + 1}" for i in range(len(entries))]
    commit = ""
    with ExitStack() as stack:
        items = [Item(cfg, role, stack.enter_context(envelope(
            run_ctx, INCIDENT, label, cfg.checkout, cfg.provider, expect)))
            for (cfg, label, expect), role in zip(entries, roles, strict=True)]
        with open_hosts(first.provider, run_ctx, ["gitserver", *roles]) as hosts, \
                GitServer(hosts["gitserver"], run_ctx) as git:
            commit = _serve_and_run(run_ctx, first, items, hosts, git)
    return [_judged(it, commit) for it in items]


def _pace(items: list[Item]) -> Pace:
    """One pace for the shared server: the longest watch of the configurations side by side."""
    first = items[0].cfg.pace
    return Pace(first.rate_kib_s, max(it.cfg.pace.watch_s for it in items), first.repo_kib)


def _repo_spec(pace: Pace) -> RepoSpec:
    """master's commits each rewrite a blob big enough to outlast the watch at the pace."""
    n = pace.master_commits
    return RepoSpec(name="project", size_kb=pace.repo_kib, master_commits=n,
                    branches=(BranchSpec("feature", n // 2, 3),
                              BranchSpec("release-1.x", n // 4, 2)))


def _serve_and_run(run_ctx: Run, first: SlowcloneConfig, items: list[Item],
                   hosts: dict[str, Host], git: GitServer) -> str:
    server = hosts["gitserver"]
    pace = _pace(items)
    repo = git.create(_repo_spec(pace))
    commit = repo.tip("master")
    env = StepEnv(repo.urls[first.transport], "master", commit)
    for it in items:
        it.build = hosts[it.role]
        it.env.target = it.build.name
        it.history.append("note", server.name, text=f"repository of {repo.pack_bytes} "
                          f"bytes, {repo.spec.commit_count} commits, served over "
                          f"{first.transport}")
    try:
        for it in items:
            _baseline(run_ctx, it, env)
        with paced(server, run_ctx, pace):
            for it in items:
                it.history.append("pace", server.name, rate_kib_s=pace.rate_kib_s,
                                  tree_bytes=pace.tree_bytes,
                                  least_transfer_s=round(pace.least_transfer_s, 1))
            _under_loss(run_ctx, first, items, server, env)
    finally:
        for it in items:
            if it.build is not None:
                remove_agent(it.build, run_ctx)
    return commit


def _judged(it: Item, commit: str) -> IncidentResult:
    params = check.Params(commit=commit, budget_s=it.cfg.budget_s,
                          cancel_grace_s=it.cfg.cancel_grace_s, loss=it.cfg.loss,
                          host=it.build.name if it.build else "")
    return it.env.result(run_checker(check.check, it.history.events(), params))


def _step(run_ctx: Run, it: Item, env: StepEnv, label: str) -> CheckoutStep:
    assert it.build is not None
    return CheckoutStep(it.build, run_ctx, it.cfg.checkout, env, f"{it.role}-{label}",
                        extra={"BUDGET_S": f"{it.cfg.budget_s:g}"})


def _baseline(run_ctx: Run, it: Item, env: StepEnv) -> None:
    step = _step(run_ctx, it, env, "baseline")
    host = step.host.name
    try:
        it.history.append("op", host, name="checkout", run="baseline", phase="start")
        status = step.run(timeout=2 * it.cfg.budget_s)
        it.history.append("op", host, name="checkout", run="baseline", phase="exit",
                          exit_code=status.exit_code, elapsed_s=status.elapsed_s,
                          head=step.head(), output=step.output())
    finally:
        step.cleanup()


def _under_loss(run_ctx: Run, cfg: SlowcloneConfig, items: list[Item], server: Host,
                env: StepEnv) -> None:
    builds = [it.build for it in items if it.build is not None]
    fault = PacketLoss(run_ctx, [server, *builds], LossModel(cfg.loss, cfg.burst),
                       pairs=[(server, b) for b in builds])
    tee = Tee([it.history for it in items])
    with measured_loss(fault, tee) as applied:
        if not applied.effective:
            return  # the checkers read the shortfall: inconclusive
        with contextlib.ExitStack() as stack:
            captures = [stack.enter_context(Capture(b, run_ctx, server.address,
                                                    it.outdir / "build.pcap", label=it.role))
                        for it, b in zip(items, builds, strict=True)]
            watches = []
            for it in items:
                watches += [_Watch(it, _step(run_ctx, it, env, "budget"), "budget", 0.0, None,
                                   2 * it.cfg.budget_s),
                            _Watch(it, _step(run_ctx, it, env, "cancel"), "cancel", 0.0,
                                   it.cfg.cancel_after_s, None)]
            for w in watches:
                stack.callback(w.step.cleanup)
            _follow_all(watches)
        for it, cap in zip(items, captures, strict=True):
            _analyse(it, cap)


def _follow_all(watches: list[_Watch]) -> None:
    """Every run started and watched in a thread of its own, all at once.

    One after the other, four starts and four status calls to loaded TCG guests took
    30 s and more: a cancel due at 10 s went out at 22.6 s, and once after the fixed
    step had given up by itself at its 20 s deadline (the cancel not exercised). On its
    own thread a run waits only for its own calls. The main thread waits in short steps,
    so an interrupt is raised in the harness's code (repro.harness.interrupts), and tells
    the threads to stop however it leaves."""
    stop = threading.Event()
    installs = {w.step.host.name: threading.Lock() for w in watches}
    with ThreadPoolExecutor(max_workers=len(watches), thread_name_prefix="repro-watch") as pool:
        futures = [pool.submit(_follow, w, stop, installs[w.step.host.name]) for w in watches]
        try:
            while True:  # until all ended, or one failed (then the others are told to stop)
                done, pending = wait(futures, timeout=POLL_S, return_when=FIRST_EXCEPTION)
                if not pending or any(f.exception() for f in done):
                    break
        finally:
            stop.set()
    for f in futures:
        f.result()  # a thread's error is the run's


def _follow(w: _Watch, stop: threading.Event, install: threading.Lock) -> None:
    """Start one run and watch it to its end. A run to be cancelled is left alone until its
    cancel is due (its early end, if any, is seen then, timed on the host): no status
    call of its own can delay the cancel. Starts on one host take turns (`install`): the
    runs of a host share the agent's file, and two uploads of it at once collided on an
    ssh host (its `.part` file moved away by the other)."""
    with install:
        w.step.start()
    w.started = w.item.history.now()
    w.item.history.append("op", w.step.host.name, name="checkout", run=w.run, phase="start")
    if w.cancel_at is not None:
        stop.wait(w.cancel_at)  # the cancel's due time, measured from the start
    while not w.done and not stop.is_set():
        _observe(w)
        if not w.done:
            stop.wait(POLL_S)  # sampling cadence of the watch, not synchronisation


def _analyse(it: Item, capture: Capture) -> None:
    result = capture.result
    if result is None:
        return
    it.env.artefacts["pcap"] = Path(result.pcap)
    analysis = analyse(result.pcap)
    table = it.outdir / "retransmissions.md"
    table.write_text(f"# Retransmissions seen on {result.host} ({result.iface})\n\n"
                     + analysis.table() + "\n")
    it.env.artefacts["retransmissions"] = table
    it.history.append("capture", result.host, complete=result.complete,
                      dropped_by_kernel=result.dropped_by_kernel, **analysis.figures())


def _observe(w: _Watch) -> None:
    history, cfg, host = w.item.history, w.item.cfg, w.step.host.name
    status = w.step.status()
    elapsed = history.now() - w.started  # after the answer: an upper bound
    if status.ended:
        if status.processes:  # give orphaned children a moment before naming them
            time.sleep(EXIT_SETTLE_S)  # bounded settle time, then observed again
            status = w.step.status()
        history.append("op", host, name="checkout", run=w.run, phase="exit",
                       exit_code=status.exit_code, elapsed_s=status.elapsed_s,
                       head=w.step.head(), output=w.step.output(),
                       left_running=[[p.pid, p.comm, p.cmdline] for p in status.processes])
        w.done = True
        return
    if w.hang_at is not None and elapsed >= w.hang_at:
        history.append("op", host, name="checkout", run=w.run, phase="hung",
                       elapsed_s=round(elapsed, 1),
                       processes=[[p.pid, p.comm, p.cmdline] for p in status.processes])
    elif w.cancel_at is None or elapsed < w.cancel_at:
        return
    history.append("op", host, name="cancel", run=w.run, phase="sent",
                   elapsed_s=round(history.now() - w.started, 2))
    outcome = w.step.cancel(watch_s=cfg.cancel_grace_s + CANCEL_OBSERVE_EXTRA_S)
    history.append("op", host, name="cancel", run=w.run, phase="done",
                   ended_after_s=outcome.ended_after_s,
                   survivors=[[p.pid, p.comm, p.cmdline] for p in outcome.survivors])
    w.done = True
