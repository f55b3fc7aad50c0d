"""pytest-xdist inside one machine: `pytest repro/ -n N` is one logical run, one report.

Model: the controller process runs no test. It picks the logical run id (--repro-run-id,
else a fresh one) and hands it to every worker (`workerinput`). Worker gwK is shard K+1
of N *by distribution, not by selection*: xdist decides what it runs, a module at a time
(`--dist loadfile`: a module's tests share its module-scoped fixtures, e.g. slowclone's
side-by-side run of both directions, so they stay on one worker); the worker
writes its own report folder RUNID.shard-(K+1)-of-N with the tests it ran, under its
own physical run id (names, scratch dir and cleanup are per worker: a worker reaps only
dead runs). When the session ends, the controller merges the workers' folders into
`<reports>/RUNID` (repro.harness.report.merge) and prints that table.

CPU: on Docker hosts each worker's hosts share 1/N of the CPUs the hosts may use
(repro.harness.hosts.docker.cpu_cap reads PYTEST_XDIST_WORKER_COUNT), so N workers'
hosts together still leave the runner, the observer, its share.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from repro.harness import names
from repro.harness.shards import Shard

if TYPE_CHECKING:
    from repro.harness.plugin import Session

KEY = "repro_run_id"


def workers() -> int:
    """How many xdist workers share this machine (1 outside xdist)."""
    return max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1))


def is_controller(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and \
        not hasattr(config, "workerinput")


def configure(session: Session, config: pytest.Config) -> None:
    """The session's identity under xdist (nothing changes without it)."""
    worker = getattr(config, "workerinput", None)
    if worker is not None and KEY in worker:
        session.logical_id = str(worker[KEY])
        session.shard = Shard(int(str(worker["workerid"]).removeprefix("gw")) + 1,
                              int(worker["workercount"]))
        session.distributed = True
    elif is_controller(config):
        session.logical_id = session.logical_id or names.new_run_id().replace("-", "_")
        session.distributed = True
        config.pluginmanager.register(Controller(session), "repro-xdist-controller")


class Controller:
    """The controller's hooks: the run id to the workers, dist by incident, the merge."""

    def __init__(self, session: Session):
        self.session = session

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[KEY] = self.session.logical_id

    def merge(self) -> tuple[Any, Path] | None:
        from repro.harness.report.merge import merge
        s = self.session
        folders = sorted(s.reports_root.glob(f"{s.logical_id}.shard-*-of-*"))
        folders = [f for f in folders if (f / "shard.json").is_file()]
        if not folders:
            return None
        return merge(folders, s.reports_root / s.logical_id, s.reports_root)


def dist_by_module(config: pytest.Config) -> None:
    """-n without --dist (xdist's "load") becomes "loadfile": a module stays on one worker."""
    if getattr(config.option, "numprocesses", None) and \
            getattr(config.option, "dist", "no") in ("load", "no"):
        config.option.dist = "loadfile"
