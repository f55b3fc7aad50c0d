#!/usr/bin/env python3
"""Run a checkout step on a host and answer questions about it (runs on the host).

Copied to the build host and run with its python3 (python3-minimal: no json,
answers are Python literals). Model: `start` launches a *wrapper* in a new
session (so its process group is the step's: a cancel is SIGTERM to it);
the wrapper starts the step (the user's script, by its own `#!` line) with
the step's environment plus `REPRO_STEP=<id>`, which every descendant
inherits, so `status` finds the step and every git child by reading
/proc/<pid>/environ, also those that left the process group. The wrapper
survives the cancel (its own SIGTERM handler), waits for the step and writes
its exit code and how long it ran to <state>/exit.

  start  STATE SCRIPT ID [KEY=VALUE...]   launch in the background, print the wrapper pid
  wait   STATE SCRIPT ID TIMEOUT [KEY=VALUE...]  run in the foreground, print the outcome
  status STATE ID                          running?, exit code, elapsed, marked processes
  cancel STATE PGID ID LIMIT               SIGTERM to the step's process group (a user's
                                           cancel), then watch until every marked process
                                           is gone or LIMIT s passed: timed here, on the host
  kill   STATE ID                          SIGKILL every marked process (cleanup)
"""

from __future__ import annotations

import ast
import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import BinaryIO

BASE_ENV = ("PATH", "HOME", "LANG", "TERM")


def _env(step_id: str, pairs: list[str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.setdefault("HOME", "/root")
    for pair in pairs:
        key, _, value = pair.partition("=")
        env[key] = value
    env["REPRO_STEP"] = step_id
    return env


def marked(step_id: str) -> list[tuple[int, str, str]]:
    """(pid, comm, cmdline) of every process whose environment carries REPRO_STEP=<id>."""
    needle = f"REPRO_STEP={step_id}".encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            if stat[stat.rindex(")") + 2] == "Z":
                continue  # a zombie has ended; its parent has not reaped it yet
            with open(f"/proc/{entry}/comm", "rb") as f:
                comm = f.read().decode(errors="replace").strip()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        found.append((int(entry), comm, cmd[:200]))
    return found


def _spawn(script: str, env: dict[str, str], log: BinaryIO) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen([script], env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd="/tmp")
    except OSError:  # no #! line: a shell script, run as a user would, with sh
        return subprocess.Popen(["sh", script], env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd="/tmp")


def _run_step(state: str, script: str, step_id: str, pairs: list[str],
              timeout: float | None) -> tuple[int | None, float]:
    with open(os.path.join(state, "output.log"), "ab") as log:
        started = time.monotonic()
        proc = _spawn(script, _env(step_id, pairs), log)
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - started


def kill_marked(step_id: str) -> None:
    for pid, _, _ in marked(step_id):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def wrapper(state: str, script: str, step_id: str, pairs: list[str]) -> None:
    signal.signal(signal.SIGTERM, lambda *_: None)  # the cancel is for the step, not for us
    with open(os.path.join(state, "pid.tmp"), "w") as f:
        f.write(f"{os.getpid()} {os.getpgrp()}\n")
    os.replace(os.path.join(state, "pid.tmp"), os.path.join(state, "pid"))  # whole or absent
    code, elapsed = _run_step(state, script, step_id, pairs, None)
    tmp = os.path.join(state, "exit.tmp")
    with open(tmp, "w") as f:
        f.write(repr({"exit_code": code, "elapsed_s": round(elapsed, 3)}))
    os.replace(tmp, os.path.join(state, "exit"))


def status(state: str, step_id: str) -> dict[str, object]:
    out: dict[str, object] = {"exit_code": None, "elapsed_s": None, "ended": False}
    try:
        with open(os.path.join(state, "exit")) as f:
            out.update(ast.literal_eval(f.read()))
            out["ended"] = True
    except FileNotFoundError:
        pass
    wrapper_pid = 0
    try:
        with open(os.path.join(state, "pid")) as f:
            wrapper_pid = int(f.read().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        pass
    out["wrapper_pid"] = wrapper_pid
    out["processes"] = [p for p in marked(step_id) if p[0] != wrapper_pid]
    return out


def cancel(pgid: int, step_id: str, limit: float) -> dict[str, object]:
    sent = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    while True:
        alive = [p for p in marked(step_id) if p[0] != pgid]
        waited = time.monotonic() - sent
        if not alive:
            return {"ended_after_s": round(waited, 3), "survivors": []}
        if waited > limit:
            return {"ended_after_s": None, "survivors": alive}
        time.sleep(0.02)  # condition poll, on the host


def main(argv: list[str]) -> None:
    cmd, state = argv[0], argv[1]
    if cmd == "start":
        os.makedirs(state, exist_ok=True)
        script, step_id, pairs = argv[2], argv[3], argv[4:]
        if os.fork() == 0:
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            try:
                wrapper(state, script, step_id, pairs)
            finally:
                os._exit(0)
        for _ in range(2000):  # until the wrapper wrote its pid (bounded condition poll)
            if os.path.exists(os.path.join(state, "pid")):
                break
            time.sleep(0.005)
        with open(os.path.join(state, "pid")) as f:
            print(f.read().strip())
    elif cmd == "wait":
        os.makedirs(state, exist_ok=True)
        script, step_id, timeout, pairs = argv[2], argv[3], float(argv[4]), argv[5:]
        code, elapsed = _run_step(state, script, step_id, pairs, timeout)
        kill_marked(step_id)
        print(repr({"exit_code": code, "elapsed_s": round(elapsed, 3), "ended": True}))
    elif cmd == "status":
        print(repr(status(state, argv[2])))
    elif cmd == "kill":
        kill_marked(argv[2])
    elif cmd == "cancel":
        print(repr(cancel(int(argv[2]), argv[3], float(argv[4]))))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
