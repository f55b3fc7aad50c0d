"""leader_deadman and sunday_scheduler interrupted mid-fault leave nothing behind.

Ctrl-C while the leader's container is paused (frozen by the cgroup freezer) thaws and
removes everything; a SIGKILL of the runner (its process alone: the etcd watch must die
because its pipe closes, not because its group was killed) leaves the hosts, which
`repro cleanup` removes, and no watch process. Ctrl-C while servers run on libfaketime
clocks removes them with their clock keepers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.interrupted_run import ROOT, docker_out, start_run
from tests.leftovers import leftovers

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def leader_paused(short: str) -> bool:
    return "paused" in docker_out("ps", "-a", "--filter", f"name=repro-{short}-srv",
                                  "--format", "{{.State}}").split()


PAUSED_LEADER = (f'[leader_deadman]\nagent = "{ROOT}/fixtures/leader_deadman/fixed.sh"\n'
                 'fault = "pause"\nmax_takeover_s = 30.0\n')


def test_ctrl_c_while_the_leader_is_frozen_removes_everything(tmp_path: Path) -> None:
    proc, short = start_run(tmp_path, "leader_deadman", PAUSED_LEADER, leader_paused)
    os.kill(proc.pid, signal.SIGINT)
    proc.wait(timeout=90)
    assert leftovers(short) == []


def test_after_sigkill_the_watch_dies_and_cleanup_leaves_nothing(tmp_path: Path) -> None:
    proc, short = start_run(tmp_path, "leader_deadman", PAUSED_LEADER, leader_paused)
    os.kill(proc.pid, signal.SIGKILL)   # the runner alone, not its process group
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and watch_running(short):
        time.sleep(0.2)  # the watch's shell sees its pipe close, then kills etcdctl
    assert not watch_running(short)
    assert any(x.startswith("container") for x in leftovers(short)), \
        "SIGKILL should leave the hosts"
    subprocess.run([str(ROOT / ".venv" / "bin" / "repro"), "cleanup"], capture_output=True,
                   text=True, timeout=120, check=True)
    assert leftovers(short) == []


def watch_running(short: str) -> bool:
    return subprocess.run(["pgrep", "-f", f"repro-{short}-watch"], capture_output=True,
                          timeout=10, check=False).returncode == 0


def clocks_running(short: str) -> bool:
    out = docker_out("ps", "--filter", f"name=repro-{short}-srv", "--format", "{{.Names}}")
    names = out.split()
    return bool(names) and subprocess.run(
        ["docker", "exec", names[0], "test", "-s", "/run/repro-clock/shared"],
        capture_output=True, timeout=30, check=False).returncode == 0


def test_ctrl_c_while_clocks_run_fast_removes_everything(tmp_path: Path) -> None:
    table = (f'[sunday_scheduler]\nscheduler = "{ROOT}/fixtures/sunday_scheduler/fixed.sh"\n'
             "examples = 0\n")
    proc, short = start_run(tmp_path, "sunday_scheduler", table, clocks_running)
    os.kill(proc.pid, signal.SIGINT)
    proc.wait(timeout=90)
    assert leftovers(short) == []
