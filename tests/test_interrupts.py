"""A run interrupted mid-flood: Ctrl-C heals and removes everything by itself;
after SIGKILL, `repro cleanup` leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.interrupted_run import ROOT, start_run
from tests.leftovers import leftovers

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def flood_running(short: str) -> bool:
    try:
        return subprocess.run(
            ["docker", "exec", f"repro-{short}-client", "test", "-e", "/tmp/repro-flood/released"],
            capture_output=True, timeout=30, check=False).returncode == 0
    except subprocess.TimeoutExpired:  # a busy daemon: ask again
        return False


def start_long_run(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a mtu_wedge run with a 60 s flood; return it once the flood is running."""
    table = (f'[mtu_wedge]\nhost_init = "{ROOT}/fixtures/mtu_wedge/fixed.sh"\n'
             "duration_s = 60.0\nstreams = 6\n")
    return start_run(tmp_path, "mtu_wedge", table, flood_running)


def test_ctrl_c_during_the_flood_heals_and_removes_everything(tmp_path):
    proc, short = start_long_run(tmp_path)
    os.kill(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    assert leftovers(short) == []


def test_sigterm_during_the_flood_heals_and_removes_everything(tmp_path):
    proc, short = start_long_run(tmp_path)
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    assert leftovers(short) == []


def test_after_sigkill_repro_cleanup_leaves_nothing(tmp_path):
    proc, short = start_long_run(tmp_path)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert leftovers(short), "a SIGKILLed run should have left its hosts behind"
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "repro"), "cleanup"], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert f"container repro-{short}-target" in out
    assert leftovers(short) == []
