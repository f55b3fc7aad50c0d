"""QEMU hosts: virtual machines with their own Debian kernel (issue 3).

Model: `QemuProvider(spec).hosts(run, roles)` boots one VM per role from the
cached guest image (repro.harness.hosts.qemu.image), all on the run's bridge
(repro.harness.hosts.qemu.net), in parallel. A VM is ready when its console printed
the guest's ready line *and* sshd accepted a login with the run's key; a VM
that shows no ready line within the watchdog time is a hung early boot (about
6 % of TCG boots): it is killed and booted once more on fresh disks. Every
VM, tap, bridge and disk file is removed when the context exits, also when a
start failed; `reap()` removes those of dead runs (or of every run) by name,
for `repro cleanup` and after a SIGKILL.

Commands go over SSH (repro.harness.hosts.sshhost, the guest's baked host key pinned);
`console()` is the serial
console file in reports/<run>/hosts/<name>.console.log; `lifecycle()` lists
what QEMU itself saw (started, reset, panicked, exited) for the probes.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from repro.harness import names
from repro.harness.errors import HostCommandError, PrerequisiteError, ProvisionError
from repro.harness.hosts.base import Host
from repro.harness.hosts.qemu import net as qemu_net
from repro.harness.hosts.qemu.guest import FW_CFG_FILES, FW_CFG_PREFIX
from repro.harness.hosts.qemu.image import find_image
from repro.harness.hosts.qemu.vm import Accel, LifeEvent, Vm, VmSpec, detect_accel
from repro.harness.hosts.sshhost import SshAuth, SshCommander, SshEndpoint, SshHostBase
from repro.harness.hosts.sshlogin import SSH_CLIENT_CONFIG, connection, wait_for_login
from repro.harness.run import SCRATCH_ROOT

if TYPE_CHECKING:
    import fabric

    from repro.harness.run import Run

__all__ = ["QemuHost", "QemuProvider", "VmSpec", "reap"]

@dataclass
class QemuHost(SshHostBase):
    name: str
    role: str
    address: str
    vm: Vm
    key_path: Path
    boot_s: float = 0.0  # QEMU start to first login, of the attempt that succeeded
    attempts: int = 1
    _ssh: SshCommander | None = field(default=None, repr=False)

    @property
    def accel(self) -> Accel:
        return self.vm.accel

    def _commander(self) -> SshCommander:
        if self._ssh is None:
            self._ssh = SshCommander(SshEndpoint(self.address),
                                     SshAuth(self.key_path, host_key=self.vm.image.host_key))
        return self._ssh

    def url(self) -> str:
        return f"qemu://{self.name}"

    def console(self) -> Path | None:
        return self.vm.console_path

    def ssh(self) -> fabric.Connection:
        return connection(self.address, self.key_path)

    def lifecycle(self) -> list[LifeEvent]:
        return list(self.vm.events)

    def alive(self) -> bool:
        return self.vm.alive()


class QemuProvider:
    """Starts VMs for a run; `spec` (or `specs[role]`) says memory, CPUs, extra disks."""

    name = "qemu"

    def __init__(self, spec: VmSpec | None = None, specs: Mapping[str, VmSpec] | None = None):
        self.spec = spec or VmSpec()
        self.specs = dict(specs or {})

    @contextlib.contextmanager
    def hosts(self, run: Run, roles: Sequence[str]) -> Iterator[dict[str, Host]]:
        image = find_image()
        if shutil.which("qemu-system-x86_64") is None:
            raise PrerequisiteError("qemu-system-x86_64 is not installed",
                                    "run setup/setup.sh packages")
        accel = detect_accel(image)
        workdir = run.scratch / "qemu"
        workdir.mkdir(parents=True, exist_ok=True)
        consoles = run.reports / "hosts"
        consoles.mkdir(parents=True, exist_ok=True)
        fw_cfg = _login_files(run, workdir)
        net = qemu_net.acquire(run.short)
        vms: list[Vm] = []
        taps: list[str] = []
        started: list[QemuHost] = []
        try:
            plans = []
            for role in roles:
                tap, index = net.add_tap()
                taps.append(tap)
                name = run.name(role)
                address = net.guest_address(index)
                key = base64.b64encode(run.key.public_line.encode()).decode()
                cmdline = (f"console=ttyS0 earlyprintk=serial panic=1 root=/dev/vda rw "
                           f"repro.ip={address}/{net.subnet.prefixlen} repro.host={role} "
                           f"repro.key={key}")
                vm = Vm(name, role, image, self.specs.get(role, self.spec), accel, workdir,
                        consoles / f"{name}.console.log", tap,
                        f"52:54:00:{int(run.short[:2], 16):02x}:{int(run.short[2:], 16) % 256:02x}"
                        f":{index:02x}", cmdline, fw_cfg)
                vms.append(vm)
                plans.append((vm, address))
            with ThreadPoolExecutor(max_workers=max(1, len(plans))) as pool:
                futures = [pool.submit(_boot, vm, address, run) for vm, address in plans]
                errors = []
                for f in futures:
                    try:
                        started.append(f.result())
                    except ProvisionError as exc:
                        errors.append(exc)
                if errors:
                    raise errors[0]
            yield {h.role: h for h in started}
        finally:
            for h in started:
                h.close()
            for vm in vms:
                vm.stop()
            for tap in taps:
                qemu_net.RunNetwork.remove_tap(tap)
            qemu_net.release(net)


def _boot(vm: Vm, address: str, run: Run) -> QemuHost:
    """Boot with a watchdog and one retry; ready = the ready line, then a login. The
    readiness login is the host's own connection (under TCG a second login cost 1 s); the
    login files came by fw_cfg (_login_files)."""
    spec = vm.spec
    last = ""
    for attempt in range(1, spec.attempts + 1):
        t0 = time.monotonic()
        vm.start()
        if not vm.wait_ready_line(1, spec.boot_timeout_s):
            last = (f"no ready line on the console within {spec.boot_timeout_s:.0f} s"
                    if vm.alive() else "QEMU exited during boot")
        else:
            host = QemuHost(vm.name, vm.role, address, vm, run.key.private_path,
                            attempts=attempt)
            try:
                wait_for_login(address, run.key.private_path, spec.login_timeout_s,
                               login=functools.partial(_log_in, host))
                host.boot_s = time.monotonic() - t0
                return host
            except (ProvisionError, HostCommandError) as exc:
                host.close()
                last = f"sshd did not accept a login: {exc}"
        vm.note(f"boot attempt {attempt} failed ({last}); killing the VM")
        vm.stop()
        vm.console_path.touch()
    qemu_log = vm.workdir / f"{vm.role}.qemu.log"
    tail = qemu_log.read_text(errors="replace").strip()[-300:] if qemu_log.exists() else ""
    raise ProvisionError(f"{vm.name}: not ready after {spec.attempts} boot attempts: {last}"
                         + (f" (qemu: {tail})" if tail else "") + f"; console: {vm.console_path}")


def _login_files(run: Run, workdir: Path) -> dict[str, Path]:
    """The run's key and ssh client configuration for host-to-host ssh inside the run (as
    the Docker backend mounts them), by QEMU's fw_cfg: repro-init (guest.GUEST_INIT) copies
    them into /root/.ssh before its ready line, on every boot; under TCG writing them over
    ssh cost a command, 0.3-0.45 s of each boot."""
    config = workdir / "ssh_config"
    config.write_text(SSH_CLIENT_CONFIG)
    return {FW_CFG_PREFIX + name: path for name, path in
            zip(FW_CFG_FILES, (run.key.private_path, config), strict=True)}


def _log_in(host: QemuHost, sock: socket.socket, timeout: float) -> None:
    """The host's connection, over the readiness socket."""
    host._commander().connect(timeout, sock=sock)


# ---- reaping ------------------------------------------------------------------------------
NAME_RE = re.compile(rf"-name\x00{names.PREFIX}-([0-9a-f]{{4}})-")


def _qemu_processes() -> list[tuple[int, str, str]]:
    """(pid, run short id, -name value) of every harness QEMU process."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            raw = (d / "cmdline").read_bytes()
            if not raw.startswith(b"qemu-system") and b"/qemu-system" not in raw.split(b"\0")[0]:
                continue
            m = NAME_RE.search(raw.decode(errors="replace"))
            if m:
                label = raw.split(b"-name\0", 1)[1].split(b"\0", 1)[0].decode(errors="replace")
                found.append((int(d.name), m.group(1), label.split(",")[0]))
    return found


def reap(all_runs: bool, live_run_ids: set[str]) -> list[str]:
    """Kill QEMU processes and delete taps, bridges and disk files of dead runs (or all runs)."""
    live = set() if all_runs else {names.short(r) for r in live_run_ids}
    removed: list[str] = []
    killed = []
    for pid, short, label in _qemu_processes():
        if short in live:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            removed.append(f"qemu process {pid} ({label})")
    deadline = time.monotonic() + 10
    for pid in killed:  # taps are busy until their QEMU is gone
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the process to disappear
    for line in qemu_net.ip("-o", "link", "show", check=False).splitlines():
        m = re.match(r"\d+: ([^:@]+)[@:]", line)
        owner = qemu_net.is_ours(m.group(1)) if m else None
        if m and owner and owner not in live:
            qemu_net.ip("link", "del", m.group(1), check=False)
            removed.append(f"interface {m.group(1)}")
    for owner, rule in qemu_net.forwarding_rules():
        if owner not in live:
            qemu_net.iptables("-D", *rule)
            removed.append(f"iptables rule {' '.join(rule)}")
    for d in SCRATCH_ROOT.glob(f"{names.PREFIX}-*/qemu"):
        short = d.parent.name.rsplit("-", 1)[-1]
        if short not in live:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(f"QEMU disks {d}")
    return removed
