"""Processes the harness runs on the runner for an incident: a caller under test, a check.

Model: a configuration under test that is a program (a service the harness sends
requests to, a check it polls) runs as a local process in a session of its own, with
its run and its role in its environment (REPRO_RUN=<run id>, REPRO_PROC=<role>; its
children inherit both). A `.py` program runs under the harness's Python (where psycopg
is installed); anything else is executed directly.

  command_for(path, args)      the argv for a configuration's program
  start(cmd, run_id, role, env, cwd, log)   Popen in its own session, tagged
  stop(proc)                   SIGTERM to its process group, then SIGKILL, bounded
  run_once(cmd, run_id, role, env, cwd, timeout_s)   run to completion or kill the group
                               at the timeout: (exit code or None, seconds, output tail)

A run killed with SIGKILL cannot stop what it started; `reap` (in
repro.harness.cleanup.REAPERS, before the database reaper) finds processes by their
environment and kills those of dead runs (every run's with `all_runs`), each one's
whole process group when it leads one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from repro.harness import procs

ENV_RUN = "REPRO_RUN"
ENV_PROC = "REPRO_PROC"
STOP_GRACE_S = 5.0
REAP_WAIT_S = 10.0
OUTPUT_TAIL = 400


def command_for(path: Path, args: Sequence[str] = ()) -> list[str]:
    head = [sys.executable, str(path)] if path.suffix == ".py" else [str(path)]
    return head + list(args)


def environment(run_id: str, role: str, extra: Mapping[str, str]) -> dict[str, str]:
    python_bin = str(Path(sys.executable).parent)
    return {**os.environ, ENV_RUN: run_id, ENV_PROC: role, **extra,
            "PATH": python_bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")}


def start(cmd: Sequence[str], run_id: str, role: str, env: Mapping[str, str], cwd: Path,
          log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(list(cmd), cwd=cwd, env=environment(run_id, role, env),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to the process group, SIGKILL after `grace_s`; the process reaped."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, grace_s)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of its group is left


def run_once(cmd: Sequence[str], run_id: str, role: str, env: Mapping[str, str], cwd: Path,
             timeout_s: float) -> tuple[int | None, float, str]:
    """(exit code, or None when killed at the timeout; seconds; the output's tail)."""
    began = time.monotonic()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=environment(run_id, role, env),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=STOP_GRACE_S)
        rc = None
    finally:
        if proc.poll() is None:
            stop(proc)
    text = out.decode(errors="replace").strip() if out else ""
    return rc, time.monotonic() - began, text[-OUTPUT_TAIL:]


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}


def tagged() -> list[tuple[int, str, str]]:
    """(pid, run id, role) of every process started (or descended from one started) here."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        env = _environ(int(d.name))
        if env.get(ENV_RUN) and ENV_PROC in env:
            found.append((int(d.name), env[ENV_RUN], env[ENV_PROC]))
    return found


def reap(all_runs: bool, live_run_ids: set[str]) -> list[str]:
    """Kill the tagged processes of dead runs (of every run with `all_runs`)."""
    from repro.harness.cleanup import live_runs

    live = set() if all_runs else live_run_ids | set(live_runs().values())
    doomed = [(pid, run, role) for pid, run, role in tagged() if run not in live]
    for pid, _, _ in doomed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid and pid != os.getpgrp():
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
    pids = [pid for pid, _, _ in doomed]
    with contextlib.suppress(TimeoutError):
        procs.wait_for(lambda: not any(procs.pid_alive(p) for p in pids), timeout=REAP_WAIT_S,
                       what="runner processes gone")
    return [f"{role} pid {pid} of run {run}: "
            f"{'killed' if not procs.pid_alive(pid) else 'would not die'}"
            for pid, run, role in doomed]
