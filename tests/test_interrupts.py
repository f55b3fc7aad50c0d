"""A run interrupted mid-flood: Ctrl-C heals and removes everything by itself;
after SIGKILL, `repro cleanup` leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.leftovers import leftovers

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


def flood_running(short: str) -> bool:
    try:
        return subprocess.run(
            ["docker", "exec", f"repro-{short}-client", "test", "-e", "/tmp/repro-flood/released"],
            capture_output=True, timeout=30, check=False).returncode == 0
    except subprocess.TimeoutExpired:  # a busy daemon: ask again
        return False


def start_long_run(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a mtu_wedge run with a 60 s flood; return it once the flood is running."""
    cfg = tmp_path / "long.toml"
    cfg.write_text(f'[mtu_wedge]\nhost_init = "{ROOT}/fixtures/mtu_wedge/fixed.sh"\n'
                   "duration_s = 60.0\nstreams = 6\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(ROOT / "repro" / "mtu_wedge"), "-k", "under_test",
         "--repro-config", str(cfg), "--repro-reports", str(tmp_path / "reports")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    short = ""
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before its flood started"
        if not short:
            for owner in Path("/tmp").glob("repro-*/owner.pid"):
                if owner.read_text().split()[0] == str(proc.pid):
                    short = owner.parent.name.split("-")[1]
        if short and flood_running(short):
            return proc, short
        time.sleep(0.2)  # condition poll
    proc.kill()
    raise AssertionError("the flood never started")


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
