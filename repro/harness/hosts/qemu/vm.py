"""One QEMU process: its command line, its console file, its life-cycle events.

Model: a Vm is a `qemu-system-x86_64 -name repro-<short>-<role>` process
booting the cached kernel + initramfs straight into the image (no BIOS boot
loader) on QEMU's `microvm` machine: no PCI bus, no legacy firmware tables,
its virtio devices on virtio-mmio and listed in a small ACPI table. Under TCG
a `pc` guest spent its time in ACPI and PCI set-up and 0.15 s per device
probing interrupt links; with a harness VM's devices, microvm reaches /init
0.6 s sooner and the ready line 1.0 s sooner (3.9-4.9 s against 4.9-6.0 s, 4
interleaved rounds). It has no HPET or PM timer, so under TCG the guest is told
its TSC rate (repro.harness.hosts.qemu.tsc). With


  - a qcow2 overlay of the image as /dev/vda and extra empty disks
    (/dev/vdb, ...) on request, all files under the run's scratch dir;
  - a virtio NIC on the run's bridge through the VM's tap;
  - the serial console written by QEMU itself to a file from the first byte
    (`earlyprintk=serial` makes the kernel's first line reach it too);
  - a QMP socket whose events (RESET, SHUTDOWN, GUEST_PANICKED from pvpanic)
    and the process's exit are recorded as life-cycle events with the
    monotonic time they were seen;
  - `panic=1`: a panicking guest reboots after a second, as the postmortem's
    servers did, so only an observer that checks the boot id notices.

The accelerator is KVM only where /dev/kvm really runs this kernel (it
prints its first console line within a few seconds), TCG otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from repro.harness.errors import PrerequisiteError
from repro.harness.hosts.qemu.image import GuestImage
from repro.harness.hosts.qemu.tsc import host_tsc_khz

QEMU = "qemu-system-x86_64"
READY_MARK = b"repro-guest: ready"
KVM_PROBE_S = 5.0
IMG_TIMEOUT_S = 60
# No option ROMs (the PVH kernel is loaded directly); the PIT and PIC for the kernel's early
# timer and interrupt set-up; the RTC for its wall clock at boot.
MACHINE = "microvm,x-option-roms=off,pit=on,pic=on,rtc=on"


@dataclass(frozen=True)
class VmSpec:
    """What a VM looks like; extra disks become /dev/vdb, /dev/vdc, ... in order."""

    memory_mb: int = 512
    cpus: int = 1
    cpu_model: str = ""  # -cpu; "" = QEMU's default for the accelerator
    disks_mb: tuple[int, ...] = ()
    boot_timeout_s: float = 40.0  # watchdog: no ready line by then = a hung boot, retried once
    login_timeout_s: float = 40.0
    attempts: int = 2


@dataclass(frozen=True)
class Accel:
    name: str  # "kvm" or "tcg"
    reason: str


@dataclass(frozen=True)
class LifeEvent:
    t_mono: float
    event: str  # started, reset, shutdown, panicked, exited
    detail: str = ""


_accel: Accel | None = None
_accel_lock = threading.Lock()


def detect_accel(image: GuestImage) -> Accel:
    """KVM if it boots this kernel to its first console line, else TCG (cached per process)."""
    global _accel
    with _accel_lock:
        if _accel is None:
            _accel = _probe_accel(image)
        return _accel


def _probe_accel(image: GuestImage) -> Accel:
    forced = os.environ.get("REPRO_QEMU_ACCEL")
    if forced in ("kvm", "tcg"):
        return Accel(forced, "forced by REPRO_QEMU_ACCEL")
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError as exc:
        return Accel("tcg", f"no usable /dev/kvm ({exc.strerror})")
    argv = [QEMU, "-accel", "kvm", "-M", "pc", "-m", "256", "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot", "-serial", "stdio", "-kernel", str(image.kernel),
            "-append", "console=ttyS0 earlyprintk=serial panic=-1"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    found = threading.Event()

    def read() -> None:
        assert proc.stdout
        for line in proc.stdout:
            if b"Linux version" in line:
                found.set()
                return

    try:
        threading.Thread(target=read, daemon=True).start()
        ok = found.wait(KVM_PROBE_S)
    finally:
        proc.kill()
    _, err = proc.communicate(timeout=10)
    if ok:
        return Accel("kvm", "/dev/kvm booted the guest kernel")
    said = err.decode(errors="replace").strip().splitlines()
    why = f"no console line within {KVM_PROBE_S:.0f} s" + (f"; qemu: {said[-1]}" if said else "")
    return Accel("tcg", f"/dev/kvm is present but does not run a guest ({why})")


def make_disk(path: Path, size_mb: int, backing: Path | None = None) -> None:
    argv = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing:
        argv += ["-b", str(backing), "-F", "raw"]
    argv += [str(path)] + ([] if backing else [f"{size_mb}M"])
    subprocess.run(argv, check=True, capture_output=True, timeout=IMG_TIMEOUT_S)


def clock_cmdline(accel: Accel) -> str:
    """What a microvm guest needs on its command line to keep time: nothing under KVM (its
    kvmclock); under TCG the host's TSC rate, and `tsc=reliable` because the only other
    clocksource (jiffies) would mark the TSC unstable whenever TCG stalls the guest."""
    if accel.name != "tcg":
        return ""
    khz = host_tsc_khz()
    if khz is None:
        raise PrerequisiteError("cannot read this machine's TSC rate, which a TCG guest's "
                                "clock needs (x86-64 only)", "run where /dev/kvm works")
    return f" tsc_early_khz={khz} tsc=reliable"


def _disk(i: int, path: Path, cache: str) -> list[str]:
    return ["-drive", f"id=d{i},file={path},if=none,format=qcow2,cache={cache}",
            "-device", f"virtio-blk-device,drive=d{i}"]


@dataclass
class Vm:
    name: str
    role: str
    image: GuestImage
    spec: VmSpec
    accel: Accel
    workdir: Path
    console_path: Path
    tap: str
    mac: str
    cmdline: str
    fw_cfg: dict[str, Path] = field(default_factory=dict)  # name -> file, for the guest's sysfs
    proc: subprocess.Popen[bytes] | None = None
    events: list[LifeEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def root_disk(self) -> Path:
        return self.workdir / f"{self.name}.qcow2"

    def disk(self, i: int) -> Path:
        return self.workdir / f"{self.name}-disk{i + 1}.qcow2"

    def argv(self) -> list[str]:
        a = [QEMU, "-name", f"{self.name},process={self.name}", "-accel", self.accel.name,
             "-M", MACHINE, "-m", str(self.spec.memory_mb), "-smp", str(self.spec.cpus),
             *(["-cpu", self.spec.cpu_model] if self.spec.cpu_model else []),
             "-nodefaults", "-no-user-config", "-display", "none",
             "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd),
             "-append", self.cmdline + clock_cmdline(self.accel),
             "-chardev", f"file,id=con,path={self.console_path},append=on",
             "-serial", "chardev:con",
             "-qmp", f"unix:{self.workdir / (self.role + '.qmp')},server=on,wait=off",
             "-action", "panic=none",
             "-device", "pvpanic", "-device", "virtio-rng-device",
             "-netdev", f"tap,id=n0,ifname={self.tap},script=no,downscript=no",
             "-device", f"virtio-net-device,netdev=n0,mac={self.mac}",
             *_disk(0, self.root_disk, "unsafe")]
        for name, path in self.fw_cfg.items():  # "," is QEMU's option separator: doubled
            a += ["-fw_cfg", f"name={name},file={str(path).replace(',', ',,')}"]
        for i in range(len(self.spec.disks_mb)):  # /dev/vdb, ...: the kernel names them in order
            a += _disk(i + 1, self.disk(i), "writeback")
        return a

    def start(self) -> None:
        """Fresh disks, then the process; returns at once (see wait_ready_line)."""
        make_disk(self.root_disk, 0, self.image.rootfs)
        for i, size in enumerate(self.spec.disks_mb):
            make_disk(self.disk(i), size)
        log = (self.workdir / f"{self.role}.qemu.log").open("ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log, start_new_session=True)
        log.close()
        self._record("started", f"pid {self.proc.pid}, accel {self.accel.name}")
        threading.Thread(target=self._watch_exit, args=(self.proc,), daemon=True).start()
        threading.Thread(target=self._watch_qmp, args=(self.proc,), daemon=True).start()

    def ready_lines(self) -> int:
        try:
            return self.console_path.read_bytes().count(READY_MARK)
        except FileNotFoundError:
            return 0

    def wait_ready_line(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_lines() >= count:
                return True
            if self.proc is None or self.proc.poll() is not None:
                return False
            time.sleep(0.05)  # polling a file for a condition
        return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Kill the process (a VM holds nothing worth a clean shutdown) and delete its disks."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        for p in [self.root_disk, *[self.disk(i) for i in range(len(self.spec.disks_mb))],
                  self.workdir / (self.role + ".qmp")]:
            p.unlink(missing_ok=True)

    def note(self, text: str) -> None:
        """A line of the harness's own on the console file (boot retries)."""
        with self.console_path.open("ab") as f:
            f.write(f"\n[repro-host] {text}\n".encode())

    def _record(self, event: str, detail: str = "") -> None:
        with self._lock:
            self.events.append(LifeEvent(time.monotonic(), event, detail))

    def _watch_exit(self, proc: subprocess.Popen[bytes]) -> None:
        code = proc.wait()
        self._record("exited", f"exit code {code}")

    def _watch_qmp(self, proc: subprocess.Popen[bytes]) -> None:
        path = str(self.workdir / (self.role + ".qmp"))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + 30
        while True:
            try:
                sock.connect(path)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    sock.close()
                    return
                time.sleep(0.05)  # the socket appears once QEMU has parsed its options
        with sock, sock.makefile("rwb") as f:
            f.write(b'{"execute": "qmp_capabilities"}\n')
            f.flush()
            for line in f:
                with contextlib.suppress(ValueError):
                    msg = json.loads(line)
                    ev = msg.get("event")
                    if ev in ("RESET", "SHUTDOWN", "GUEST_PANICKED", "STOP"):
                        self._record(ev.lower().replace("guest_", ""),
                                     json.dumps(msg.get("data", {}), sort_keys=True))
