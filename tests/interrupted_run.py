"""A reproduction run started in its own process group, to be interrupted or killed.

`start_run` writes the configuration table, starts `pytest repro/<incident> -k
under_test` with its reports under tmp_path, and returns once `ready(short id)` holds:
the moment the test wants to interrupt (a flood running, a leader frozen...).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.leftovers import command_output, short_of

ROOT = Path(__file__).resolve().parent.parent


def docker_out(*args: str) -> str:
    """`docker ARGS`' standard output ("" on an error: the caller asks again)."""
    try:
        return command_output(["docker", *args])
    except subprocess.TimeoutExpired:  # a busy daemon
        return ""


def start_run(tmp_path: Path, incident: str, table: str, ready: Callable[[str], bool],
              deadline_s: float = 180.0) -> tuple[subprocess.Popen[bytes], str]:
    """The running pytest process and its short run id, once `ready(short)` holds."""
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(table)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(ROOT / "repro" / incident), "-k", "under_test",
         "--repro-config", str(cfg), "--repro-reports", str(tmp_path / "reports")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + deadline_s
    short = ""
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before the moment to interrupt it"
        short = short or short_of(proc.pid)
        if short and ready(short):
            return proc, short
        time.sleep(0.2)  # condition poll
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the run never reached the moment to interrupt it")
