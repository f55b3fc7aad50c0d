"""Deploy-storm instances left by a run that died are reaped (no database needed).

Instances run in sessions of their own, so a runner killed with SIGKILL leaves
them running. The storm's reaper (repro.harness.cleanup.REAPERS) finds them by the run
id in their environment and kills each one's whole process group, children
included; a live run's instances are spared.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from repro.harness import cleanup, names, procs
from repro.harness.history import History
from repro.harness.run import SCRATCH_ROOT, start_run
from repro.mongo_index_lock import storm

ROOT = Path(__file__).resolve().parent.parent
INSTANCES = 3
# an instance that starts a child with an empty environment (the child carries no
# marker: only the instance's process group finds it) and then hangs
HANG = ("import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], env={}); "
        "time.sleep(300)")
RUNNER = textwrap.dedent("""
    import os, sys, threading
    from pathlib import Path
    from repro.harness.history import History
    from repro.mongo_index_lock.storm import Storm, StormPlan
    from repro.harness.run import start_run

    run = start_run(Path(sys.argv[1]), sys.argv[2])
    plan = StormPlan(command=[sys.executable, "-c", sys.argv[3]], cwd=Path.cwd(),
                     env=dict(os.environ), instances=int(sys.argv[4]), waves=1,
                     interval_s=0.0, timeout_s=300.0, run_id=run.run_id)
    Storm(plan, History()).run(threading.Event())
""")


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _of_run(run_id: str) -> list[int]:
    return [pid for pid, run in storm.leftover_instances() if run == run_id]


def _groups_alive(groups: set[int]) -> list[int]:
    """Live processes (zombies are dead) whose process group is one of `groups`."""
    return [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit()
            and _pgid(int(d.name)) in groups and procs.pid_alive(int(d.name))]


def _kill_groups(groups: set[int]) -> None:
    for g in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(g, signal.SIGKILL)


@pytest.fixture
def dead_run(tmp_path: Path) -> Iterator[tuple[str, set[int]]]:
    """A runner with a storm in flight, SIGKILLed: its run id and its instances' groups."""
    run_id = names.new_run_id()
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path), run_id, HANG,
                               str(INSTANCES)], cwd=ROOT, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    groups: set[int] = set()
    try:
        def started() -> bool:
            assert runner.poll() is None, "the runner ended before its storm started"
            pids = _of_run(run_id)
            # each instance and its unmarked child: two live processes per group
            return len(pids) == INSTANCES and len(_groups_alive(set(pids))) == 2 * INSTANCES

        procs.wait_for(started, timeout=60, interval=0.1, what="storm instances running")
        groups = set(_of_run(run_id))
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
        yield run_id, groups
    finally:
        runner.kill()
        runner.wait(timeout=30)
        _kill_groups(groups)  # whatever a failed test left
        shutil.rmtree(SCRATCH_ROOT / names.object_name(run_id), ignore_errors=True)


def test_instances_of_a_sigkilled_run_are_reaped(dead_run: tuple[str, set[int]]) -> None:
    run_id, groups = dead_run
    assert len(_groups_alive(groups)) == 2 * INSTANCES, "SIGKILL should have left them"
    live = set(cleanup.live_runs().values())
    assert run_id not in live
    out = storm.reap(False, live)  # what `repro cleanup` and every run's start do
    mine = [line for line in out if run_id in line]
    assert len(mine) == INSTANCES and all(line.endswith("killed") for line in mine), out
    assert _groups_alive(groups) == [], "an instance or its child outlived the reap"


def test_a_live_runs_instances_are_spared(tmp_path: Path) -> None:
    run = start_run(tmp_path)
    plan = storm.StormPlan(command=[sys.executable, "-c", "import time; time.sleep(300)"],
                           cwd=Path.cwd(), env=dict(os.environ), instances=2, waves=1,
                           interval_s=0.0, timeout_s=300.0, run_id=run.run_id)
    deploy = storm.Storm(plan, History())
    thread = threading.Thread(target=deploy.run, args=(threading.Event(),), daemon=True)
    thread.start()
    try:
        procs.wait_for(lambda: len(_of_run(run.run_id)) == 2, timeout=30,
                       what="instances running")
        out = storm.reap(False, set(cleanup.live_runs().values()))
        # a list of live runs made before this run started (cleanup.reap makes it before
        # the reapers ahead of this one, which take seconds): liveness is read again
        out += storm.reap(False, set())
        assert not [line for line in out if run.run_id in line], out
        assert len(_of_run(run.run_id)) == 2
    finally:
        deploy.kill_all()
        thread.join(timeout=30)
        run.close()
    assert not thread.is_alive() and _of_run(run.run_id) == []


def test_the_storm_reaper_runs_before_the_database_reaper() -> None:
    # instances are clients of the run's database server: they go first
    assert cleanup.REAPERS.index("repro.mongo_index_lock.storm") < \
        cleanup.REAPERS.index("repro.harness.services.databases")
