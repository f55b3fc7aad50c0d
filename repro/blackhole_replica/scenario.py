"""The blackhole_replica run: replicated database, caller under test, open-loop load, a freeze.

Steps:
1. a primary and two streaming replicas on loopback (services.databases.replicated),
   `repro_jobs (id bigint primary key, payload text)` made on the primary with `rows`
   rows, waited for on both replicas;
2. the caller (the configuration under test) started with PRIMARY_URL, REPLICA_URLS and
   PORT, ready once /health answers 200 and a read returns its row;
3. the node probe (TCP connect + query to every replica, from outside), each replica's
   own count of the caller's reads (served.py: its statistics counters) and the open-loop
   load (requests at `rate`, /health every 0.25 s) run throughout: `baseline_s`, then
   replica1 frozen (`fault = "freeze"`: faults.pause.FreezeProcesses, its postmaster and
   every child in the run's freezer cgroup) or its traffic dropped (`"drop"`:
   faults.drop) for `freeze_s`, then `after_s` after the heal;
4. everything stopped (each bounded), the history judged (check.py).
The caller is stopped, the cluster stopped and its data deleted however the run ends;
a run killed with SIGKILL leaves them to `repro cleanup` (the freezer, runner-process and
database reapers, in that order).
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.blackhole_replica import check
from repro.blackhole_replica.config import BlackholeReplicaConfig
from repro.blackhole_replica.served import ServedReads
from repro.harness import procs
from repro.harness.checks import Outcome, run_checker
from repro.harness.envelope import Envelope, envelope, slug
from repro.harness.faults.base import Fault, injected
from repro.harness.faults.drop import DropLoopbackPort
from repro.harness.faults.pause import FreezeProcesses
from repro.harness.history import History
from repro.harness.probes.pg_nodes import NodeProbe
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.harness.services import runner
from repro.harness.services.databases import postgres as pg
from repro.harness.services.databases.replicated import PgCluster, replicated_cluster
from repro.harness.workloads.http_load import OpenLoop

INCIDENT = "blackhole_replica"
FROZEN = "replica1"
WATCH_EVERY_S = 0.2


def payload(job_id: int) -> str:
    return f"job-{job_id}"


def params(cfg: BlackholeReplicaConfig) -> check.Params:
    return check.Params(
        max_p99_ms=cfg.max_p99_ms, min_success=cfg.min_success, max_in_flight=cfg.in_flight_limit,
        rate=cfg.rate, fault="pause" if cfg.fault == "freeze" else "drop", node=FROZEN,
        kernel_acks=cfg.fault == "freeze", max_health_gap_s=cfg.max_health_gap_s,
        max_recovery_s=cfg.max_recovery_s, hold_s=cfg.hold_s, max_back_s=cfg.max_back_s)


def run(run_ctx: Run, cfg: BlackholeReplicaConfig, label: str,
        expect: Outcome = Outcome.PASS) -> IncidentResult:
    with envelope(run_ctx, INCIDENT, label, cfg.caller, "postgresql", expect) as env:
        with replicated_cluster(run_ctx.scratch, slug(label), replicas=2) as cluster:
            env.target = (f"postgresql {cluster.version.split()[0]}: primary + 2 streaming "
                          f"replicas on loopback; {cfg.fault} of {FROZEN}")
            env.history.append("note", "db", text=env.target)
            seed(cluster, cfg.rows)
            with caller(run_ctx, cfg, cluster, env) as started:
                if started is not None:
                    observe(run_ctx, cfg, cluster, env.history, started)
        return env.result(run_checker(check.check, env.history.events(), params(cfg)))


def seed(cluster: PgCluster, rows: int) -> None:
    """repro_jobs on the primary, `rows` rows, until both replicas have every one."""
    with pg.connect(cluster.primary.url, statement_timeout_ms=30000) as conn:
        conn.execute("CREATE TABLE repro_jobs (id bigint PRIMARY KEY, payload text)")
        conn.execute("INSERT INTO repro_jobs SELECT i, 'job-' || i "
                     "FROM generate_series(1, %s) AS i", (rows,))
    for r in cluster.replicas:
        with pg.connect(r.url, statement_timeout_ms=5000) as conn:
            procs.wait_for(functools.partial(_has_rows, conn, rows), timeout=30, interval=0.1,
                           what=f"{r.name} replaying repro_jobs")


def _has_rows(conn: Any, rows: int) -> bool:
    with contextlib.suppress(Exception):
        return int(conn.execute("SELECT count(*) FROM repro_jobs").fetchone()[0]) == rows
    return False


@dataclass(frozen=True)
class Caller:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path


@contextlib.contextmanager
def caller(run_ctx: Run, cfg: BlackholeReplicaConfig, cluster: PgCluster, env: Envelope
           ) -> Iterator[Caller | None]:
    """The caller under test, started and ready (None, recorded, when it never was)."""
    port = procs.free_port()
    log = env.outdir / "caller.log"
    env.artefacts["caller log"] = log
    proc = runner.start(runner.command_for(cfg.caller), run_ctx.run_id, "caller",
                        {"PRIMARY_URL": cluster.primary.url,
                         "REPLICA_URLS": " ".join(cluster.replica_urls), "PORT": str(port)},
                        cfg.caller.parent, log)
    try:
        error = _wait_ready(proc, port, cfg.ready_timeout_s)
        env.history.append("caller", "caller", phase="ready", ok=not error, port=port,
                           pid=proc.pid, error=error)
        yield None if error else Caller(proc, port, log)
    finally:
        runner.stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], port: int, timeout_s: float) -> str:
    """"" once /health says 200 and /jobs/1 returns its row; else why not."""
    import urllib.request

    last = ""

    def ready() -> bool:
        nonlocal last
        if proc.poll() is not None:
            return True
        try:
            for path, want in (("/health", None), ("/jobs/1", payload(1))):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                            timeout=2) as resp:
                    body = resp.read().decode(errors="replace")
                    if want is not None and body != want:
                        last = f"{path} returned {body[:80]!r}, not {want!r}"
                        return False
            return True
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
            return False

    try:
        procs.wait_for(ready, timeout=timeout_s, interval=0.1, what="the caller ready")
    except TimeoutError:
        return f"not ready within {timeout_s:g} s ({last})"
    if proc.poll() is not None:
        return f"exited with code {proc.returncode} at start"
    return ""


def fault_for(run_ctx: Run, cfg: BlackholeReplicaConfig, cluster: PgCluster,
              history: History) -> Fault:
    node = cluster.node(FROZEN)
    if cfg.fault == "drop":
        return DropLoopbackPort(run_ctx, FROZEN, node.port, clock=history.now)
    return FreezeProcesses(run_ctx, FROZEN, [node.pid])


def observe(run_ctx: Run, cfg: BlackholeReplicaConfig, cluster: PgCluster, history: History,
            started: Caller) -> None:
    probe = NodeProbe(history, cluster.replicas)
    served = ServedReads(history, cluster.replicas)
    load = OpenLoop(history, started.port, cfg.rate, path=lambda i: f"/jobs/{i % cfg.rows + 1}",
                    expect=lambda i: payload(i % cfg.rows + 1), timeout_s=cfg.request_timeout_s)
    watch = Watch(started, history)
    probe.start()
    served.start()
    load.start()
    try:
        watch.over(cfg.baseline_s)
        with injected(fault_for(run_ctx, cfg, cluster, history), history):
            watch.over(cfg.freeze_s)
        watch.over(cfg.after_s)
    finally:
        load.stop()
        served.stop()
        probe.stop()
        watch.exited()


@dataclass
class Watch:
    """Observation windows that notice the caller exiting (recorded once)."""

    caller: Caller
    history: History
    recorded: bool = False

    def over(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.exited():
                return
            time.sleep(min(WATCH_EVERY_S, left))  # an observation window, watched

    def exited(self) -> bool:
        proc = self.caller.proc
        if proc.poll() is None:
            return False
        if not self.recorded:
            self.recorded = True
            self.history.append("caller", "caller", phase="exit", rc=proc.returncode,
                                output=procs.log_tail(self.caller.log))
        return True
