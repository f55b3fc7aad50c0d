"""Kill: a host dies (its container killed, its VM's process SIGKILLed), or one process does.

Model: `KillHost(host)` is the machine losing power: Docker `kill` (SIGKILL to every
process of the container, which then stays exited), QEMU the QEMU process SIGKILLed
(the guest's disks stay until the host block removes them). `KillProcess(host, pid)`
SIGKILLs one process (with its process group when `group`) on a host.

Measurement: the host no longer answers a TCP connect from the runner to sshd
(PROBE_PORT), or the process is gone from /proc; otherwise the kill did not take
(shortfall: "still answers"). Heal has nothing to undo: a dead host stays dead and
bringing a service back is what incidents put under test.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from repro.harness.errors import FaultError
from repro.harness.faults.base import Applied, machine_of
from repro.harness.faults.link import CMD_TIMEOUT_S
from repro.harness.hosts.base import Host
from repro.harness.probes.tcp import connects
from repro.harness.procs import eventually

PROBE_PORT = 22
GONE_TIMEOUT_S = 10.0


def answers(address: str, port: int = PROBE_PORT, timeout: float = 1.0) -> bool:
    """A TCP connect from the runner completes."""
    return connects(address, port, timeout)


@dataclass
class KillHost:
    host: Host
    clock: Callable[[], float] | None = None  # the history's: fault.start at the kill itself
    name: str = "kill"

    @property
    def target_name(self) -> str:
        return self.host.name

    def inject(self) -> Applied:
        container, qemu_pid = machine_of(self.host)
        began = self.clock() if self.clock else None
        if container is not None:
            how = "docker kill"
            import docker.errors
            with contextlib.suppress(docker.errors.APIError):  # already dead: measured below
                container.kill()
        elif qemu_pid is not None:
            how = "SIGKILL qemu"
            with contextlib.suppress(ProcessLookupError):
                os.killpg(qemu_pid, signal.SIGKILL)
        else:
            raise FaultError(f"{self.host.name}: killing a whole host needs a Docker or QEMU "
                             "host (KillProcess kills a process on any host)")
        silent = eventually(lambda: not answers(self.host.address), timeout=GONE_TIMEOUT_S)
        applied = Applied(self.name, self.host.name, {"how": how},
                          {"answers_tcp": not silent}, began_t=began)
        if not silent:
            applied.shortfall = (f"{self.host.name} still answers a TCP connect to port "
                                 f"{PROBE_PORT} {GONE_TIMEOUT_S:.0f} s after the kill")
        return applied

    def heal(self) -> None:
        """Nothing to undo: a dead host stays dead."""


@dataclass
class KillProcess:
    host: Host
    pid: int
    group: bool = False
    name: str = "kill"

    @property
    def target_name(self) -> str:
        return f"{self.host.name}:pid {self.pid}"

    def inject(self) -> Applied:
        target = f"-{self.pid}" if self.group else str(self.pid)  # dash: no "--"
        self.host.run(f"kill -KILL {target}", timeout=CMD_TIMEOUT_S, check=False)
        gone = eventually(lambda: not self.host.run(
            f"test -d /proc/{self.pid}", timeout=CMD_TIMEOUT_S, check=False).ok,
            timeout=GONE_TIMEOUT_S)
        applied = Applied(self.name, self.target_name, {"pid": self.pid, "group": self.group},
                          {"gone": gone})
        if not gone:
            applied.shortfall = f"pid {self.pid} on {self.host.name} is still there"
        return applied

    def heal(self) -> None:
        """Nothing to undo."""
