"""The backlog_drain run: a job queue stalled by frozen replicas, healed, and the resolution check.

Steps:
1. a primary and two streaming replicas on loopback (services.databases.replicated),
   the queue table on the primary (jobqueue.SCHEMA);
2. the sampler, the workers and the producer (jobqueue.JobQueue) and the node probe
   (TCP connect + query to each replica, from outside) run throughout: `baseline_s`;
3. the fault: both replicas' processes frozen (faults.pause.FreezeProcesses: the
   workers' replica reads hang, the kernel still acks) for `freeze_s`, then thawed.
   From the fault's start the resolution check (the configuration under test) runs
   every second with DB_URL = the primary (services.runner.run_once, killed after
   `check_timeout_s`): one `resolution` event per run (rc, how long, its output);
4. after the heal, observation goes on until steady state has returned (the checker's
   own rule, asked live) and the check has declared, or the grace after steady state
   has passed, or `observe_max_s`; then everything stops and the history is judged.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from repro.backlog_drain import check, jobqueue
from repro.backlog_drain.config import BacklogDrainConfig
from repro.harness.checks import Outcome, run_checker
from repro.harness.envelope import envelope, slug
from repro.harness.faults.base import injected
from repro.harness.faults.pause import FreezeProcesses
from repro.harness.history import History
from repro.harness.probes.pg_nodes import NodeProbe
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.harness.services import runner
from repro.harness.services.databases.replicated import PgCluster, replicated_cluster

INCIDENT = "backlog_drain"
POLL_S = 1.0
LOOK_EVERY_S = 0.5
TAIL_S = 1.0  # observed past the end condition, so the last samples are in


def params(cfg: BacklogDrainConfig) -> check.Params:
    return check.Params(hold_s=cfg.hold_s, grace_s=cfg.grace_s, depth_slack=cfg.depth_slack,
                        age_slack_s=cfg.age_slack_s, min_backlog=cfg.min_backlog,
                        workers=cfg.workers, poll_s=POLL_S)


def run(run_ctx: Run, cfg: BacklogDrainConfig, label: str,
        expect: Outcome = Outcome.PASS) -> IncidentResult:
    with envelope(run_ctx, INCIDENT, label, cfg.resolution, "postgresql", expect) as env:
        with replicated_cluster(run_ctx.scratch, slug(label), replicas=2) as cluster:
            env.target = (f"postgresql {cluster.version.split()[0]}: primary + 2 streaming "
                          "replicas on loopback; both replicas frozen")
            env.history.append("note", "db", text=env.target)
            jobqueue.create(cluster)
            observe(run_ctx, cfg, cluster, env.history)
        verdict = run_checker(check.check, env.history.events(), params(cfg))
        mark_outcome(env.history, params(cfg))
        return env.result(verdict)


def mark_outcome(history: History, p: check.Params) -> None:
    """The declaration and the return of steady state as marks on the queue panel (drawn
    from the judged history; the checker never reads marks)."""
    events = history.events()
    starts = [e.t for e in events if e.kind == "fault.start" and e.host == check.TARGET]
    stops = [e.t for e in events if e.kind == "fault.stop" and e.host == check.TARGET]
    if not starts or not stops:
        return
    state = check.steady(events, p, starts[0], stops[0], events[-1].t)
    declared = check.declaration(events, starts[0]).declared
    if state.returned_t is not None:
        history.append("mark", "harness", t=state.returned_t, panel="queue",
                       name="steady state back", derived=True)
    if declared is not None:
        history.append("mark", "resolution check", t=declared, panel="queue",
                       name="declared resolved", derived=True)


def observe(run_ctx: Run, cfg: BacklogDrainConfig, cluster: PgCluster,
            history: History) -> None:
    queue = jobqueue.JobQueue(cluster, history, cfg.arrival_rate, cfg.workers, cfg.job_s)
    probe = NodeProbe(history, cluster.replicas)
    poller = Poller(run_ctx, cfg, cluster.primary.url, history)
    probe.start()
    queue.start()
    try:
        time.sleep(cfg.baseline_s)  # the baseline observation window
        fault = FreezeProcesses(run_ctx, check.TARGET, [r.pid for r in cluster.replicas])
        with injected(fault, history):
            s0 = history.now()
            poller.start()
            time.sleep(cfg.freeze_s)  # the fault's window
        s1 = history.now()
        until_judgeable(cfg, history, s0, s1)
    finally:
        poller.stop()
        stuck = queue.stop()
        probe.stop()
        if stuck:
            history.append("note", "queue", text=f"threads still running at the end: {stuck}")


def until_judgeable(cfg: BacklogDrainConfig, history: History, s0: float, s1: float) -> None:
    """Observe until the verdict cannot change any more, or `observe_max_s` after the heal."""
    p = params(cfg)
    deadline = time.monotonic() + cfg.observe_max_s
    while time.monotonic() < deadline:
        events = history.events()
        state = check.steady(events, p, s0, s1, history.now())
        d = check.declaration(events, s0)
        if state.returned_t is not None:
            declared_or_late = d.declared is not None or \
                history.now() > state.returned_t + cfg.grace_s + POLL_S
            if declared_or_late and history.now() >= state.returned_t + cfg.hold_s:
                break
        time.sleep(LOOK_EVERY_S)  # an observation window, looked at twice a second
    time.sleep(TAIL_S)  # the last samples and polls


@dataclass
class Poller:
    """The resolution check, run every POLL_S from the fault's start until stopped."""

    run_ctx: Run
    cfg: BacklogDrainConfig
    db_url: str
    history: History
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="resolution", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.cfg.check_timeout_s + runner.STOP_GRACE_S + 2)

    def _loop(self) -> None:
        cmd = runner.command_for(self.cfg.resolution)
        while not self._stop.is_set():
            began = time.monotonic()
            t = self.history.now()
            rc, took, output = runner.run_once(cmd, self.run_ctx.run_id, "resolution",
                                               {"DB_URL": self.db_url},
                                               self.cfg.resolution.parent,
                                               self.cfg.check_timeout_s)
            self.history.append("resolution", "check", t=t, rc=rc, took_s=round(took, 3),
                                output=output[-200:])
            name = "resolved (exit 0)" if rc == 0 else (
                "timed out" if rc is None else "not resolved")
            # drawn at its exit, when the answer existed (the checker dates it the same way)
            self.history.append("mark", "resolution check", t=t + took, panel="resolution",
                                name=name)
            self._stop.wait(max(0.0, POLL_S - (time.monotonic() - began)))  # the poll cadence
