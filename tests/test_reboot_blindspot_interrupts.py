"""A reboot_blindspot run interrupted while its guest and its Prometheus are up: Ctrl-C
stops Prometheus and removes the guest by itself; after SIGKILL, `repro cleanup` leaves
nothing behind (the Prometheus process, its directory, the VM, its taps and disks)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from repro.harness import procs
from tests.interrupted_run import ROOT, start_run
from tests.leftovers import leftovers

pytestmark = [pytest.mark.qemu, pytest.mark.slow]


def _prometheus_of(short: str) -> list[int]:
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if (argv := procs.cmdline(pid)) and Path(argv[0]).name == "prometheus"
            and f"/repro-{short}/" in " ".join(argv)]


def start_long_run(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A run of the configuration under test with a long quiet window; returned once its
    Prometheus is running and its guest is provisioned (the quiet window has begun)."""
    table = (f'[reboot_blindspot]\nrules = "{ROOT}/fixtures/reboot_blindspot/fixed.yml"\n'
             "quiet_s = 120.0\n")

    def quiet_window(short: str) -> bool:
        histories = list((tmp_path / "reports").glob("*/reboot_blindspot/*/history.jsonl"))
        return bool(_prometheus_of(short) and histories
                    and '"name": "provision"' in histories[0].read_text())

    return start_run(tmp_path, "reboot_blindspot", table, quiet_window, deadline_s=240)


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
