"""Process helpers: liveness of a pid, bounded stop ladders, bounded waits, free ports.

Used by the cleanup reaper and by the database servers the harness starts.
Model: a server is a local process the harness started (or finds again later
through the pid file the server itself writes in its data directory). Stopping
is a ladder with a bound on every rung: the polite signal, then the hard one,
then SIGKILL; a pid is signalled only while /proc says it is still the server
of that data directory (pids get reused). `wait_for` polls a condition with a
deadline: the only kind of waiting the harness does. `start_on_free_port` starts a
server on a free loopback port, again on another one if that was taken meanwhile.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from repro.harness.errors import ProvisionError
from repro.harness.names import PREFIX

T = TypeVar("T")
SCRATCH_GLOB = f"{PREFIX}-*"  # run scratch directories under the temp root


def scratch_run_id(scratch: Path) -> str | None:
    """The run id a scratch directory's owner.pid names (repro.run), if readable."""
    try:
        lines = (scratch / "owner.pid").read_text().splitlines()
    except OSError:
        return None
    return lines[1].strip() if len(lines) > 1 else None


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the caller retries on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(condition: Callable[[], T | None], *, timeout: float, interval: float = 0.05,
             what: str = "condition") -> T:
    """Poll `condition` until it returns something truthy; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(interval)  # polling cadence of a bounded wait


def eventually(condition: Callable[[], object], *, timeout: float) -> bool:
    """Whether `condition` became truthy within `timeout` s (wait_for without the raise)."""
    try:
        wait_for(condition, timeout=timeout)
    except TimeoutError:
        return False
    return True


def start_on_free_port(start: Callable[[int], subprocess.Popen[bytes]],
                       ready: Callable[[int], bool], stop: Callable[[subprocess.Popen[bytes]],
                                                                   object], *,
                       what: str, log: Path, timeout: float, attempts: int = 3
                       ) -> tuple[subprocess.Popen[bytes], int]:
    """A local server started by `start(port)` on a free loopback port, once `ready(port)`.
    One that exits at start (the port was taken meanwhile) is started again on another
    port, `attempts` times in all; ProvisionError with the tail of its `log` when it never
    answers within `timeout` s, or exits every time. What it started is `stop`ped on any
    way out but success (an interrupt included)."""
    for _ in range(attempts):
        port = free_port()
        proc = start(port)

        def up(p: subprocess.Popen[bytes] = proc, n: int = port) -> bool:
            return p.poll() is not None or ready(n)

        try:
            wait_for(up, timeout=timeout, interval=0.1, what=f"{what} ready")
        except TimeoutError as exc:
            stop(proc)
            raise ProvisionError(f"{what} was not ready within {timeout:.0f} s: "
                                 f"{log_tail(log)}") from exc
        except BaseException:
            stop(proc)
            raise
        if proc.poll() is None:
            return proc, port
        stop(proc)
    raise ProvisionError(f"{what} exited at start: {log_tail(log)}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def stop_pid(pid: int, *, polite: signal.Signals, hard: signal.Signals,
             timeout: float = 30.0, reap: Callable[[], object] | None = None) -> bool:
    """Signal `pid` down the ladder polite -> hard -> SIGKILL; True once it is gone.

    `reap` (e.g. Popen.poll) is called while waiting so our own child does not
    linger as a zombie.
    """
    def gone() -> bool:
        if reap is not None:
            reap()
        return not pid_alive(pid)

    for sig, wait_s in ((polite, timeout), (hard, 10.0), (signal.SIGKILL, 10.0)):
        if gone():
            return True
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        try:
            wait_for(gone, timeout=wait_s, what=f"pid {pid} exit")
            return True
        except TimeoutError:
            continue
    return gone()


def log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(text.strip().splitlines()[-lines:])


def start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot): tells a pid from a reused one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[-1].split()[19])
