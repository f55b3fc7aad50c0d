"""Pause: a host or some processes frozen — accepting nothing, answering nothing — then thawed.

Model: three targets, one contract (inject -> Applied, idempotent heal):

  PauseHost(host)              the whole machine. Docker: `docker pause` (the cgroup
                               freezer: every process of the container stopped, its
                               network namespace still there, so the kernel still
                               completes TCP handshakes to it); QEMU: the QEMU process
                               SIGSTOPped (the guest's CPUs, kernel and network stack
                               stop: nothing answers, not even TCP). `kind` says which.
  FreezeProcesses(run, label, pids)
                               processes on the runner (and their descendants at inject
                               time) moved into a cgroup-v1 freezer of the run,
                               /sys/fs/cgroup/freezer/repro-<short>-<label>, and frozen.
                               Their sockets stay open: the kernel acknowledges data and
                               completes handshakes on their listening sockets while
                               they answer nothing (a replica "accepting requests, but
                               not responding").
  StopProcessGroup(host, pgid) SIGSTOP / SIGCONT of one process group on a host.

Measurement is the fault's own (its effect on the target): the container's state is
"paused", every task's freezer state is FROZEN, every process of the group is in state
T. What a pause does to the *service* (a query that does not return while a connect
succeeds) is for the scenario to observe from outside.

Cleanup: a run's freezer cgroups are thawed and removed by `reap` (REAPERS); a paused
container goes with its host (docker rm -f works on a paused container), a stopped
QEMU process with its VM (SIGKILL kills a stopped process).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from repro.harness import names
from repro.harness.errors import FaultError
from repro.harness.faults.base import Applied, machine_of
from repro.harness.faults.link import CMD_TIMEOUT_S
from repro.harness.hosts.base import Host
from repro.harness.procs import eventually
from repro.harness.run import Run

FREEZER_ROOT = Path("/sys/fs/cgroup/freezer")
SETTLE_TIMEOUT_S = 10.0


@dataclass
class PauseHost:
    host: Host
    clock: Callable[[], float] | None = None  # the history's: fault.start at the pause itself
    name: str = "pause"
    kind: str = ""          # "docker pause" or "SIGSTOP qemu" once injected
    _paused: bool = field(default=False, init=False)

    @property
    def target_name(self) -> str:
        return self.host.name

    def inject(self) -> Applied:
        container, qemu_pid = machine_of(self.host)
        began = self.clock() if self.clock else None
        if container is not None:
            self.kind = "docker pause"
            container.pause()
            self._paused = True
            container.reload()
            state = container.attrs["State"]["Status"]
            measured = {"state": state}
            shortfall = "" if state == "paused" else f"the container is {state}, not paused"
        elif qemu_pid is not None:
            self.kind = "SIGSTOP qemu"
            os.kill(qemu_pid, signal.SIGSTOP)
            self._paused = True
            # the stop is delivered asynchronously: wait for it (every thread stopped)
            eventually(lambda: _proc_state(qemu_pid) == "T", timeout=SETTLE_TIMEOUT_S)
            state = _proc_state(qemu_pid)
            measured = {"state": state}
            shortfall = "" if state == "T" else f"the QEMU process is in state {state!r}"
        else:
            raise FaultError(f"{self.host.name}: pausing a whole host needs a Docker or QEMU "
                             "host (StopProcessGroup pauses processes on any host)")
        return Applied(self.name, self.host.name, {"how": self.kind}, measured, shortfall,
                       began_t=began)

    def heal(self) -> None:
        if not self._paused:
            return
        self._paused = False
        container, qemu_pid = machine_of(self.host)
        if container is not None:
            import docker.errors
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.unpause()
        elif qemu_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(qemu_pid, signal.SIGCONT)


@dataclass
class FreezeProcesses:
    run: Run
    label: str
    pids: list[int]
    clock: Callable[[], float] | None = None  # the history's: fault.start at the freeze
    name: str = "pause"
    _frozen: list[int] = field(default_factory=list, init=False)

    @property
    def cgroup(self) -> Path:
        return FREEZER_ROOT / self.run.name(self.label)

    @property
    def target_name(self) -> str:
        return self.label

    def inject(self) -> Applied:
        if not FREEZER_ROOT.is_dir():
            raise FaultError(f"no cgroup-v1 freezer at {FREEZER_ROOT}: cannot freeze processes")
        tasks = sorted(_with_descendants(self.pids))
        self.cgroup.mkdir(exist_ok=True)
        for pid in tasks:
            with contextlib.suppress(ProcessLookupError, OSError):
                (self.cgroup / "cgroup.procs").write_text(str(pid))
        self._frozen = _tasks(self.cgroup)
        began = self.clock() if self.clock else None
        (self.cgroup / "freezer.state").write_text("FROZEN")
        frozen = eventually(lambda: _state(self.cgroup) == "FROZEN", timeout=SETTLE_TIMEOUT_S)
        measured = {"tasks_frozen": len(self._frozen), "processes_asked": len(tasks),
                    "state": _state(self.cgroup)}
        shortfall = ""
        if not self._frozen:
            shortfall = "no process to freeze (they had all exited)"
        elif not frozen:
            shortfall = f"the freezer did not reach FROZEN within {SETTLE_TIMEOUT_S:.0f} s"
        return Applied(self.name, self.label, {"cgroup": str(self.cgroup), "pids": self.pids},
                       measured, shortfall, began_t=began)

    def heal(self) -> None:
        if self.cgroup.is_dir():
            thaw_and_remove(self.cgroup)
        self._frozen = []


@dataclass
class StopProcessGroup:
    host: Host
    pgid: int
    name: str = "pause"
    _stopped: bool = field(default=False, init=False)

    @property
    def target_name(self) -> str:
        return f"{self.host.name}:pgid {self.pgid}"

    def inject(self) -> Applied:
        self.host.run(f"kill -STOP -{self.pgid}", timeout=CMD_TIMEOUT_S)
        self._stopped = True
        states = self.host.run(f"ps -eo pgid=,stat= | awk '$1 == {self.pgid} {{print $2}}'",
                               timeout=CMD_TIMEOUT_S, check=False).stdout.split()
        running = [s for s in states if not s.startswith("T")]
        shortfall = ("no process in the group" if not states else
                     f"{len(running)} of {len(states)} processes not stopped" if running else "")
        return Applied(self.name, self.target_name, {"pgid": self.pgid},
                       {"processes_stopped": len(states) - len(running)}, shortfall)

    def heal(self) -> None:
        if self._stopped:
            self._stopped = False
            self.host.run(f"kill -CONT -{self.pgid} 2>/dev/null; true",
                          timeout=CMD_TIMEOUT_S, check=False)


def _proc_state(pid: int) -> str:
    """The state letter of /proc/PID/stat ("T" stopped), "" when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[0]


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            out.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return out


def _with_descendants(pids: Iterable[int]) -> set[int]:
    children = _children()
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += children.get(pid, [])
    return seen


def _tasks(cgroup: Path) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(x) for x in (cgroup / "tasks").read_text().split()]
    return []


def _state(cgroup: Path) -> str:
    with contextlib.suppress(OSError):
        return (cgroup / "freezer.state").read_text().strip()
    return ""


def thaw_and_remove(cgroup: Path) -> None:
    """THAWED, every task back to the root freezer cgroup, then the directory removed."""
    with contextlib.suppress(OSError):
        (cgroup / "freezer.state").write_text("THAWED")
    eventually(lambda: _state(cgroup) == "THAWED", timeout=SETTLE_TIMEOUT_S)

    def emptied() -> bool:
        # moved again on every try: a thawed task may fork meanwhile (a postmaster accepting
        # the connections queued while it was frozen), and its child starts in this cgroup
        for pid in _tasks(cgroup):
            with contextlib.suppress(OSError):
                (FREEZER_ROOT / "tasks").write_text(str(pid))
        return not _tasks(cgroup)

    eventually(emptied, timeout=SETTLE_TIMEOUT_S)
    with contextlib.suppress(OSError):
        cgroup.rmdir()


def reap(all_runs: bool, live_run_ids: set[str]) -> list[str]:
    """Thaw and remove the freezer cgroups of dead runs (or of all runs)."""
    live = {names.short(r) for r in live_run_ids}
    removed = []
    for cgroup in sorted(FREEZER_ROOT.glob(f"{names.PREFIX}-*")) if FREEZER_ROOT.is_dir() else []:
        m = re.match(rf"{names.PREFIX}-([0-9a-f]{{4}})-", cgroup.name)
        if m and cgroup.is_dir() and (all_runs or m.group(1) not in live):
            thaw_and_remove(cgroup)
            removed.append(f"freezer cgroup {cgroup.name}")
    return removed
