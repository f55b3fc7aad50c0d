"""The mongo_index_lock run: database, workload, batch job, deploy storm, verdict.

Steps:
1. open the database target (an embedded PostgreSQL by default; mongod from
   PATH, or a URI) and build the service's tables and indexes, as production
   had them;
2. start the lock/ticket sampler, the background batch job (long write
   transactions) and the workload clients; let them run `baseline_s`;
3. the deploy storm: `instances` start-up processes in `waves`;
4. keep the workload running `settle_s` after the storm, stop every thread
   (each bounded), judge the history (check.py), draw the timeline (plot.py).
The target is stopped and deleted (or, for a URI, its repro_* tables
dropped) whatever happens, Ctrl-C included. The history stays in memory
during the run and is written to reports/<run>/mongo_index_lock/<label>/ at
the end, with the timeline and a summary table (report.py) next to it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from repro.harness.checks import Outcome, Verdict, run_checker
from repro.harness.envelope import Envelope, envelope, slug
from repro.harness.history import History
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.harness.services.databases import Target, mongodb, open_target
from repro.mongo_index_lock import check, plot, report, workload
from repro.mongo_index_lock.config import MongoIndexLockConfig
from repro.mongo_index_lock.drivers import Driver, driver_for
from repro.mongo_index_lock.storm import Storm, StormPlan

INCIDENT = "mongo_index_lock"
CONNECTION_HEADROOM = 30  # sessions beyond instances + clients: batch, sampler, admin
ASKED_BY_CONFIG = 'the configuration under test has [mongo_index_lock] db = "mongodb"'
ASKED_BY_EXTRA = "the shipped fixtures also run on MongoDB where a server can be had"


def not_run_reason(cfg: MongoIndexLockConfig, asked_by: str) -> str | None:
    """Why this run cannot happen on this machine (it is then reported as not run), or None.

    Only a MongoDB target can be missing: "mongodb" with no mongod on PATH and no
    $REPRO_MONGODB_URL. PostgreSQL (the default) always runs: a missing server is a
    missing prerequisite and fails. A URI always runs: one that does not answer fails.
    """
    if cfg.kind != "mongodb" or mongodb.available(cfg.db):
        return None
    return f"not run: {asked_by}, and there is {mongodb.MISSING_REASON}"


def run(run_ctx: Run, cfg: MongoIndexLockConfig, label: str,
        expect: Outcome = Outcome.PASS) -> IncidentResult:
    params = check.Params(max_stall_ms=cfg.max_stall_ms, p99_ms=cfg.p99_ms,
                          instances=cfg.instances, batch_expected=cfg.batch_txn_s > 0)
    configuration = " ".join([str(cfg.service_startup), cfg.service_args]).strip()
    # the history stays in memory while the storm runs (no disk write on the workload's
    # path) and is written out at the end
    with envelope(run_ctx, INCIDENT, label, configuration, cfg.db, expect,
                  mirror=False) as env:
        env.target = cfg.db
        verdict = _on_target(run_ctx, cfg, env, params)
    _draw(env, verdict, params, f"{INCIDENT} / {label} on {cfg.kind}")
    return env.result(verdict)


def _on_target(run_ctx: Run, cfg: MongoIndexLockConfig, env: Envelope,
               params: check.Params) -> Verdict:
    history = env.history
    with open_target(cfg.db, run_ctx.scratch, slug(env.label),
                     max_connections=cfg.instances + cfg.clients + CONNECTION_HEADROOM,
                     mongo_tickets=cfg.mongo_tickets) as target:
        env.target = env.provider = describe(target)
        history.append("note", host="db", text=f"target {env.target}")
        driver = driver_for(target, cfg.op_timeout_s)
        driver.prepare()
        try:
            return _observe_storm(cfg, driver, target, history, params, run_ctx.run_id)
        finally:
            if not target.embedded:
                try:
                    driver.drop()
                except Exception as exc:  # reported, never hiding the verdict
                    history.append("note", host="db",
                                   text=f"could not drop the repro_* tables: {exc}")


def _draw(env: Envelope, verdict: Verdict, params: check.Params, title: str) -> None:
    """The incident's own timeline and summary page beside the history."""
    png = env.outdir / "timeline.png"
    try:
        plot.timeline(env.history.events(), verdict, params, png, title)
        env.artefacts["timeline"] = png
    except Exception as exc:  # a figure that cannot be drawn must not hide the verdict
        env.notes.append(f"timeline not drawn: {type(exc).__name__}: {exc}")
    env.artefacts["summary"] = report.write_summary(
        env.outdir / "summary.md", f"{INCIDENT}: {env.label}", env.target, verdict, png.name)


def _observe_storm(cfg: MongoIndexLockConfig, driver: Driver, target: Target,
                   history: History, params: check.Params, run_id: str) -> Verdict:
    threads = workload.Threads()
    try:
        workload.start_ticker(threads, history)
        workload.start_sampler(threads, driver, history)
        workload.start_batch(threads, driver, history, cfg.batch_txn_s, cfg.batch_gap_s)
        workload.start_workload(threads, driver, history, cfg.workload_rate, cfg.clients)
        threads.stop.wait(cfg.baseline_s)  # the baseline observation window
        Storm(storm_plan(cfg, target, run_id), history).run(threads.stop)
        threads.stop.wait(cfg.settle_s)  # the observation window after the storm
    finally:
        stuck = threads.stop_all(timeout_s=max(cfg.op_timeout_s, cfg.batch_txn_s) + 5)
        if stuck:
            history.append("note", text=f"threads still running at the end: {stuck}")
    return run_checker(check.check, history.events(), params)


def storm_plan(cfg: MongoIndexLockConfig, target: Target, run_id: str) -> StormPlan:
    python_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "DB_URL": target.url, "DB_KIND": cfg.kind,
           "PATH": python_bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")}
    return StormPlan(command=cfg.startup_command(sys.executable),
                     cwd=cfg.service_startup.parent, env=env, instances=cfg.instances,
                     waves=cfg.waves, interval_s=cfg.wave_interval_s,
                     timeout_s=cfg.instance_timeout_s, run_id=run_id)


def describe(target: Target) -> str:
    """Engine, version and where, with any password in a URI left out."""
    kind = "mongodb" if hasattr(target, "database") else "postgresql"
    where = "embedded" if target.embedded else _redact(target.url)
    return f"{kind} {target.version.split()[0]} ({where})"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
