"""The deploy storm: N service instances started in waves, as real processes.

Model: a deploy rolls the service out in `waves`; every wave starts its share
of the `instances` at once, the next wave `interval_s` later (a deploy tool
does not wait for the lock queue). Each instance is one process running the
configuration's start-up command with env DB_URL and DB_KIND, in its own
process group at the lowest CPU priority (NICE), killed (the whole group)
if it is still starting after
`timeout_s`. The storm is the run's fault window: `fault.start` / `fault.stop`
(fault "deploy_storm") around it, one `instance` event when a process starts
and one when it exits (exit code, time it took, the tail of its output).
The window closes when the last instance has exited or was killed; on
Ctrl-C every instance still running is killed before the error goes on.

Leftovers. Every instance carries its run in its environment (REPRO_RUN=<run
id>, REPRO_INSTANCE=<n>), which its own children inherit. A run killed with
SIGKILL cannot kill its instances (they are in sessions of their own); `reap`
(listed in repro.harness.cleanup.REAPERS, so `repro cleanup` and every run's start
call it) finds them through /proc/<pid>/environ and kills those of dead runs
(of every run with `all_runs`), each instance's whole process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from repro.harness import procs
from repro.harness.faults.base import Applied, injected, record_measure
from repro.harness.history import History

FAULT = "deploy_storm"
ENV_RUN = "REPRO_RUN"  # the run an instance belongs to: how `reap` finds it
ENV_INSTANCE = "REPRO_INSTANCE"
REAP_WAIT_S = 10.0
KILL_GRACE_S = 5.0
OUTPUT_TAIL = 300
# Instances run on other machines in production; here they share 2 cores with the
# database and the workload, so they run at the lowest CPU priority: their start-up
# costs no CPU the database needs, and only their locks reach it.
NICE = ["nice", "-n", "19"]


@dataclass(frozen=True)
class StormPlan:
    command: list[str]
    cwd: Path
    env: dict[str, str]
    instances: int
    waves: int
    interval_s: float
    timeout_s: float
    run_id: str  # written into every instance's environment (ENV_RUN)

    def wave_sizes(self) -> list[int]:
        base, extra = divmod(self.instances, self.waves)
        return [base + (1 if w < extra else 0) for w in range(self.waves)]


@dataclass
class StormResult:
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    durations_s: list[float] = field(default_factory=list)


class Storm:
    def __init__(self, plan: StormPlan, history: History):
        self.plan = plan
        self.history = history
        self.result = StormResult()
        self._lock = threading.Lock()
        self._live: dict[int, subprocess.Popen[bytes]] = {}

    name = FAULT
    target_name = "deploy"

    def run(self, stop: threading.Event) -> StormResult:
        """The storm as the run's fault window (repro.harness.faults.base.injected: recorded, in the
        heal registry, healed however it ends): every wave on schedule, every instance
        waited for; what it achieved goes into a `fault.measure` event."""
        with injected(self, self.history):
            self._waves(stop)
        r = self.result
        record_measure(self.history, FAULT, self.target_name, started=r.started,
                       succeeded=r.succeeded, failed=r.failed, timed_out=r.timed_out)
        return self.result

    def inject(self) -> Applied:
        plan = self.plan
        return Applied(FAULT, self.target_name,
                       params={"instances": plan.instances, "waves": plan.waves,
                               "interval_s": plan.interval_s, "command": " ".join(plan.command)})

    def heal(self) -> None:
        """Kill every instance still running (idempotent)."""
        self.kill_all()

    def _waves(self, stop: threading.Event) -> None:
        plan = self.plan
        threads: list[threading.Thread] = []
        t0 = time.monotonic()
        n = 0
        for wave, size in enumerate(plan.wave_sizes()):
            wait = t0 + wave * plan.interval_s - time.monotonic()
            if wait > 0 and stop.wait(wait):  # the deploy's schedule, not synchronisation
                break
            self.history.append("note", host="deploy", text=f"wave {wave + 1}: {size} "
                                f"instances", wave=wave + 1)
            for _ in range(size):
                th = threading.Thread(target=self._instance, args=(n, wave + 1),
                                      name=f"repro-instance{n}", daemon=True)
                th.start()
                threads.append(th)
                n += 1
        deadline = time.monotonic() + plan.timeout_s + KILL_GRACE_S * 2
        for th in threads:
            th.join(max(0.0, deadline - time.monotonic()))

    def kill_all(self) -> None:
        with self._lock:
            live = list(self._live.values())
        for proc in live:
            _kill_group(proc)

    def _instance(self, n: int, wave: int) -> None:
        plan, host = self.plan, f"instance{n}"
        env = {**plan.env, ENV_RUN: plan.run_id, ENV_INSTANCE: str(n)}
        begin = time.monotonic()
        try:
            proc = subprocess.Popen([*NICE, *plan.command], cwd=plan.cwd, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            self.history.append("instance", host=host, phase="exit", wave=wave, started=False,
                                ok=False, rc=None, duration_s=0.0, output=str(exc))
            with self._lock:
                self.result.failed += 1
            return
        with self._lock:
            self._live[proc.pid] = proc
            self.result.started += 1
        self.history.append("instance", host=host, phase="start", wave=wave, pid=proc.pid)
        timed_out = False
        try:
            out, _ = proc.communicate(timeout=plan.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            try:
                out, _ = proc.communicate(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                out = b""
        duration = time.monotonic() - begin
        ok = proc.returncode == 0 and not timed_out
        text = (out or b"").decode(errors="replace").strip()[-OUTPUT_TAIL:]
        # nice itself could not run the command (126: not executable, 127: not found)
        started = not (proc.returncode in (126, 127) and text.startswith("nice:"))
        with self._lock:
            self._live.pop(proc.pid, None)
            if not started:
                self.result.started -= 1
            self.result.durations_s.append(duration)
            if ok:
                self.result.succeeded += 1
            else:
                self.result.failed += 1
                self.result.timed_out += timed_out
        self.history.append("instance", host=host, phase="exit", wave=wave, started=started,
                            ok=ok, rc=proc.returncode, timed_out=timed_out,
                            duration_s=round(duration, 4), output=text)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


# ---- reaping ------------------------------------------------------------------------------

def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}


def leftover_instances() -> list[tuple[int, str]]:
    """(pid, run id) of every process on the machine that is (or descends from) an instance."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        env = _environ(int(d.name))
        if env.get(ENV_RUN) and ENV_INSTANCE in env:
            found.append((int(d.name), env[ENV_RUN]))
    return found


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid and pid != os.getpgrp()
    except ProcessLookupError:
        return False


def _any_alive(pids: list[int], groups: set[int]) -> bool:
    """Whether one of `pids`, or any process of `groups`, is still alive (zombies are not)."""
    if any(procs.pid_alive(pid) for pid in pids):
        return True
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and procs.pid_alive(int(d.name)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(int(d.name)) in groups:
                    return True
    return False


def _kill(pid: int) -> None:
    """SIGKILL the instance's process group if it leads one (its own session), else the pid."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if _leads_group(pid):
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def reap(all_runs: bool, live_run_ids: set[str]) -> list[str]:
    """Kill the instances (and their children) of dead runs, or of every run; wait them out.

    Liveness is read again here, not only taken from `live_run_ids`: that list was made
    before the reapers ahead of this one ran (seconds, with Docker), and a run that
    started meanwhile may already have its storm going.
    """
    from repro.harness.cleanup import live_runs

    live = set() if all_runs else live_run_ids | set(live_runs().values())
    doomed = [(pid, run) for pid, run in leftover_instances() if run not in live]
    pids = [pid for pid, _ in doomed]
    groups = {pid for pid in pids if _leads_group(pid)}  # read before the kill ends them
    for pid in pids:
        _kill(pid)
    with contextlib.suppress(TimeoutError):  # the groups' unmarked children too: a SIGKILL
        procs.wait_for(lambda: not _any_alive(pids, groups),  # lands when they next run
                       timeout=REAP_WAIT_S, what="storm instances gone")
    return [f"storm instance pid {pid} of run {run}: "
            f"{'killed' if not procs.pid_alive(pid) else 'would not die'}"
            for pid, run in doomed]
