"""A reboot_blindspot run interrupted while its guest and its Prometheus are up: Ctrl-C
stops Prometheus and removes the guest by itself; after SIGKILL, `repro cleanup` leaves
nothing behind (the Prometheus process, its directory, the VM, its taps and disks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repro.harness import procs
from tests.leftovers import leftovers, short_of

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


def _prometheus_of(short: str) -> list[int]:
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if (argv := procs.cmdline(pid)) and Path(argv[0]).name == "prometheus"
            and f"/repro-{short}/" in " ".join(argv)]


def start_long_run(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A run of the configuration under test with a long quiet window; returned once its
    Prometheus is running and its guest is provisioned (the quiet window has begun)."""
    cfg = tmp_path / "long.toml"
    cfg.write_text(f'[reboot_blindspot]\nrules = "{ROOT}/fixtures/reboot_blindspot/fixed.yml"\n'
                   "quiet_s = 120.0\n")
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(ROOT / "repro" / "reboot_blindspot"), "-k",
         "under_test", "--repro-config", str(cfg), "--repro-reports", str(reports)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    short = ""
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before its quiet window"
        short = short or short_of(proc.pid)
        histories = list(reports.glob("*/reboot_blindspot/*/history.jsonl"))
        if short and _prometheus_of(short) and histories and \
                '"name": "provision"' in histories[0].read_text():
            return proc, short
        time.sleep(0.5)  # condition poll
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the run never reached its quiet window")


def test_ctrl_c_stops_prometheus_and_removes_the_guest(tmp_path: Path) -> None:
    proc, short = start_long_run(tmp_path)
    try:
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=90)
        assert leftovers(short) == []
        assert _prometheus_of(short) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_after_sigkill_repro_cleanup_reaps_prometheus_and_the_guest(tmp_path: Path) -> None:
    proc, short = start_long_run(tmp_path)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        left = leftovers(short)
        assert any(x.startswith("process") and "prometheus" in x for x in left), left
        assert any(x.startswith("qemu") for x in left), left
        out = subprocess.run([str(ROOT / ".venv" / "bin" / "repro"), "cleanup"],
                             capture_output=True, text=True, timeout=180, check=True).stdout
        assert f"/repro-{short}/repro-prometheus-" in out, out
        assert leftovers(short) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
