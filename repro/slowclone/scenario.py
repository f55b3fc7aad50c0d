"""The slowclone run: a git server, a build host, loss between them, the checkout step.

Roles: `gitserver` (git daemon + smart HTTP, a generated repository of
`repo_mb` MB) and `build` (runs the configuration's `checkout` step with
REPO_URL, BRANCH=master, COMMIT=master's tip, WORKDIR, and BUDGET_S). Steps:

1. baseline: the step once without any fault; it must check out COMMIT;
2. inject `loss` (bursts of `burst` packets) both ways between the two hosts,
   measured by calibration (repro.faults.loss); start tcpdump on the build
   host;
3. start the step twice side by side: the *budget* run is watched until it
   ends or until twice `budget_s` (then it is hung, and cancelled); the
   *cancel* run gets SIGTERM on its process group at `cancel_after_s`, and
   must be gone, git children included, within `cancel_grace_s`;
4. stop the capture, heal (the counters' final reading is recorded), analyse
   the capture (repro.capture.analysis), judge the history (check.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from repro.capture import Capture, analyse
from repro.checkout import CheckoutStep, StepEnv, remove_agent
from repro.checks import Outcome, run_checker
from repro.faults.loss import LossModel, PacketLoss, measured_loss
from repro.gitserver import GitServer, RepoSpec
from repro.history import History
from repro.hosts import open_hosts
from repro.hosts.base import Host
from repro.report.results import IncidentResult
from repro.run import Run
from repro.slowclone import check
from repro.slowclone.config import SlowcloneConfig

INCIDENT = "slowclone"
POLL_S = 0.5
CANCEL_OBSERVE_EXTRA_S = 2.0   # keep looking a little past the grace time, to name survivors
EXIT_SETTLE_S = 1.0            # children of a step that just exited get this long to go


@dataclass
class _Watch:
    step: CheckoutStep
    run: str
    started: float
    cancel_at: float | None         # seconds after start; None: never cancel (budget run)
    hang_at: float | None           # seconds after start when a still running step is hung
    sent: float | None = None       # history time the cancel was sent
    done: bool = False


def run(run_ctx: Run, cfg: SlowcloneConfig, label: str, expect: Outcome = Outcome.PASS
        ) -> IncidentResult:
    outdir = run_ctx.reports / INCIDENT / label.replace(" ", "-")
    outdir.mkdir(parents=True, exist_ok=True)
    history = History(outdir / "history.jsonl")
    started = time.monotonic()
    artefacts = {"history": str(outdir / "history.jsonl")}
    build_name = ""
    commit = ""
    try:
        with open_hosts(cfg.provider, run_ctx, ["gitserver", "build"]) as hosts, \
                GitServer(hosts["gitserver"], run_ctx) as git:
            build, server = hosts["build"], hosts["gitserver"]
            build_name = build.name
            repo = git.create(RepoSpec(name="project", size_kb=int(cfg.repo_mb * 1024)))
            commit = repo.tip("master")
            env = StepEnv(repo.urls[cfg.transport], "master", commit)
            history.append("note", server.name, text=f"repository of {repo.pack_bytes} bytes, "
                           f"{repo.spec.commit_count} commits, served over {cfg.transport}")
            try:
                _baseline(run_ctx, cfg, build, env, history)
                artefacts.update(_under_loss(run_ctx, cfg, build, server, env, history, outdir))
            finally:
                remove_agent(build, run_ctx)
    finally:
        history.close()
    params = check.Params(commit=commit, budget_s=cfg.budget_s,
                          cancel_grace_s=cfg.cancel_grace_s, loss=cfg.loss)
    verdict = run_checker(check.check, history.events(), params)
    return IncidentResult(
        incident=INCIDENT, label=label, configuration=str(cfg.checkout), provider=cfg.provider,
        verdict=verdict, expected=expect, duration_s=round(time.monotonic() - started, 1),
        figures=dict(verdict.figures), artefacts=artefacts, target=build_name)


def _baseline(run_ctx: Run, cfg: SlowcloneConfig, build: Host, env: StepEnv,
              history: History) -> None:
    step = _step(run_ctx, cfg, build, env, "baseline")
    try:
        history.append("op", build.name, name="checkout", run="baseline", phase="start")
        status = step.run(timeout=2 * cfg.budget_s)
        history.append("op", build.name, name="checkout", run="baseline", phase="exit",
                       exit_code=status.exit_code, elapsed_s=status.elapsed_s, head=step.head(),
                       output=step.output())
    finally:
        step.cleanup()


def _step(run_ctx: Run, cfg: SlowcloneConfig, build: Host, env: StepEnv, label: str
          ) -> CheckoutStep:
    return CheckoutStep(build, run_ctx, cfg.checkout, env, label,
                        extra={"BUDGET_S": f"{cfg.budget_s:g}"})


def _under_loss(run_ctx: Run, cfg: SlowcloneConfig, build: Host, server: Host, env: StepEnv,
                history: History, outdir: Path) -> dict[str, str]:
    artefacts: dict[str, str] = {}
    fault = PacketLoss(run_ctx, [build, server], LossModel(cfg.loss, cfg.burst))
    with measured_loss(fault, history) as applied:
        if not applied.effective:
            return artefacts  # the checker reads the shortfall: inconclusive
        pcap = outdir / "build.pcap"
        with Capture(build, run_ctx, server.address, pcap, label="build") as capture:
            watches = [
                _Watch(_step(run_ctx, cfg, build, env, "budget"), "budget", 0.0, None,
                       2 * cfg.budget_s),
                _Watch(_step(run_ctx, cfg, build, env, "cancel"), "cancel", 0.0,
                       cfg.cancel_after_s, None)]
            try:
                for w in watches:
                    w.step.start()
                    w.started = history.now()
                    history.append("op", build.name, name="checkout", run=w.run, phase="start")
                while not all(w.done for w in watches):
                    for w in watches:
                        if not w.done:
                            _observe(w, cfg, history)
                    time.sleep(POLL_S)  # sampling cadence of the watch, not synchronisation
            finally:
                for w in watches:
                    w.step.cleanup()
        result = capture.result
        if result is not None:
            artefacts["pcap"] = str(result.pcap)
            analysis = analyse(result.pcap)
            table = outdir / "retransmissions.md"
            table.write_text(f"# Retransmissions seen on {build.name} ({result.iface})\n\n"
                             + analysis.table() + "\n")
            artefacts["retransmissions"] = str(table)
            history.append("capture", build.name, complete=result.complete,
                           dropped_by_kernel=result.dropped_by_kernel, **analysis.figures())
    return artefacts


def _observe(w: _Watch, cfg: SlowcloneConfig, history: History) -> None:
    host = w.step.host.name
    status = w.step.status()
    now = history.now()  # after the answer: times measured from here are upper bounds
    if w.sent is None:
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
        if w.hang_at is not None and now - w.started >= w.hang_at:
            history.append("op", host, name="checkout", run=w.run, phase="hung",
                           elapsed_s=round(now - w.started, 1),
                           processes=[[p.pid, p.comm, p.cmdline] for p in status.processes])
        elif w.cancel_at is None or now - w.started < w.cancel_at:
            return
        w.step.cancel()
        w.sent = history.now()
        history.append("op", host, name="cancel", run=w.run, phase="sent",
                       elapsed_s=round(w.sent - w.started, 2))
        return
    if not status.processes:
        history.append("op", host, name="cancel", run=w.run, phase="done",
                       ended_after_s=round(now - w.sent, 2), survivors=[],
                       exit_code=status.exit_code)
        w.done = True
    elif now - w.sent > cfg.cancel_grace_s + CANCEL_OBSERVE_EXTRA_S:
        history.append("op", host, name="cancel", run=w.run, phase="done", ended_after_s=None,
                       survivors=[[p.pid, p.comm, p.cmdline] for p in status.processes])
        w.done = True
