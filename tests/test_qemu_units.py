"""QEMU backend pieces that need no QEMU: console scanning, the watcher, the
initramfs archive, names, the recipe hash, fault arithmetic."""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from repro.harness.errors import PrerequisiteError
from repro.harness.faults.disk_fill import DiskFill, FillMeasurement
from repro.harness.faults.netem import Netem
from repro.harness.history import History
from repro.harness.hosts.qemu import guest as qemu_guest
from repro.harness.hosts.qemu import image as qemu_image
from repro.harness.hosts.qemu import net as qemu_net
from repro.harness.hosts.qemu import vm as qemu_vm
from repro.harness.hosts.qemu.tsc import host_tsc_khz, measure_tsc_khz
from repro.harness.probes.kernel_log import KernelLogWatcher, scan

CONSOLE = """\
[    0.000000] Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org)
repro-guest: ready host=vm boot_id=aaaa-1111
[   29.230660] device-mapper: snapshots: Invalidating snapshot: Unable to allocate exception.
[   29.392741] Buffer I/O error on dev dm-3, logical block 48, lost async page write
[   29.399718] Aborting journal on device dm-3-8.
[   30.906264] EXT4-fs error (device dm-3): ext4_journal_check_start:83: comm dd: Detected
[   30.908017] EXT4-fs (dm-3): I/O error while writing superblock
[   30.908480] Kernel panic - not syncing: EXT4-fs (device dm-3): panic forced after error
[   31.0] BUG: kernel NULL pointer dereference, address: 0000000000000000
[   31.1] Oops: 0000 [#1] PREEMPT SMP NOPTI
[  242.1] INFO: task dd:171 blocked for more than 120 seconds.
[    0.000000] Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org)
repro-guest: ready host=vm boot_id=bbbb-2222
Server listening on 0.0.0.0 port 22.
"""


def test_scan_names_every_kernel_finding_and_the_reboot():
    findings, boots = scan(CONSOLE.splitlines())
    kernel = [f.fields["pattern"] for f in findings if f.kind == "kernel"]
    assert kernel == ["snapshot_invalidated", "io_error", "ext4_error", "ext4_error",
                      "ext4_error", "panic", "bug", "oops", "hung_task"]
    host = [f.fields for f in findings if f.kind == "host"]
    assert [h["event"] for h in host] == ["guest_ready", "boot", "guest_ready"]
    assert host[2]["boot_id"] == "bbbb-2222" and boots == 2
    panic = next(f for f in findings if f.fields.get("pattern") == "panic")
    assert panic.fields["kernel_t"] == pytest.approx(30.908480)


def test_a_quiet_console_has_no_findings():
    findings, _ = scan(["[    2.8] EXT4-fs (vda): mounted filesystem with ordered data mode.",
                        "Accepted publickey for root from 10.213.0.1 port 36658 ssh2"])
    assert findings == []


class FakeHost:
    name = "repro-ab12-vm"

    def __init__(self, path: Path):
        self.path = path

    def console(self) -> Path:
        return self.path


def test_watcher_reads_only_new_complete_lines(tmp_path: Path):
    console = tmp_path / "console.log"
    console.write_text("[ 0.0] Linux version 6.1\n[ 1.0] Kernel panic - not syncing: old\n")
    history = History()
    watcher = KernelLogWatcher(history, FakeHost(console))
    watcher.start()
    try:
        with console.open("a") as f:
            f.write("[ 5.0] Kernel panic - not sync")  # a line still being written
            f.flush()
            watcher.poll()
            assert [e for e in history.events() if e.kind == "kernel"] == []
            f.write("ing: fresh\n[ 0.0] Linux version 6.1\n")
    finally:
        watcher.stop()
    kinds = [(e.kind, e.get("pattern") or e.get("event")) for e in history.events()]
    assert kinds == [("kernel", "panic"), ("host", "boot")]
    assert "fresh" in history.events()[0].get("line")


def _read_cpio(data: bytes) -> dict[str, tuple[int, bytes]]:
    out, i = {}, 0
    while True:
        assert data[i:i + 6] == b"070701"
        f = [int(data[i + 6 + 8 * k:i + 14 + 8 * k], 16) for k in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[i + 110:i + 110 + namesize - 1].decode()
        i += 110 + namesize
        i += (4 - i % 4) % 4
        body = data[i:i + size]
        i += size + (4 - size % 4) % 4
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body)


def test_initramfs_is_a_newc_archive_with_init_busybox_and_modules(tmp_path: Path):
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF fake busybox")
    modules = tmp_path / "modules"
    for rel in qemu_guest.INITRAMFS_MODULES:
        (modules / rel).parent.mkdir(parents=True, exist_ok=True)
        (modules / rel).write_bytes(rel.encode())
    files = _read_cpio(gzip.decompress(qemu_image.build_initramfs(busybox, modules)))
    assert files["init"][0] == 0o100755 and b"switch_root" in files["init"][1]
    assert files["bin/busybox"][1] == busybox.read_bytes()
    assert files["bin/sh"] == (0o120777, b"busybox")
    order = files["modules.order"][1].decode().split()
    assert order[-1] == "virtio_blk.ko" and order.index("virtio.ko") < order.index(
        "virtio_mmio.ko")


def test_recipe_hash_follows_the_guest_scripts(monkeypatch: pytest.MonkeyPatch):
    before = qemu_image.recipe_hash()
    assert before == qemu_image.recipe_hash() and len(before) == 12
    monkeypatch.setattr(qemu_guest, "INITTAB", qemu_guest.INITTAB + "# changed\n")
    assert qemu_image.recipe_hash() != before


def test_interface_names_are_ours_and_short():
    assert qemu_net.bridge_name("ab12") == "rpab12qbr"
    assert qemu_net.tap_name("ab12", 7) == "rpab12t7"
    assert qemu_net.is_ours("rpab12qbr") == "ab12"
    assert qemu_net.is_ours("rpab12t12") == "ab12"
    for foreign in ("rpab12br", "eth0", "docker0", "rpab12veth", "rpzzzzqbr", "xrpab12t1"):
        assert qemu_net.is_ours(foreign) is None


def test_fill_shortfall():
    m = FillMeasurement(0.951, 1, {"1": "target"}, 0, False, 5.0)
    assert DiskFill.shortfall(m, 0.95) == ""
    m = FillMeasurement(0.80, 1, {"1": "enospc"}, 0, False, 5.0)  # full before the target
    assert DiskFill.shortfall(m, 0.95) == ""
    m = FillMeasurement(0.80, 1, {"1": "error: EIO"}, 0, False, 5.0)
    assert "short of 95%" in DiskFill.shortfall(m, 0.95)
    m = FillMeasurement(-1.0, 0, {}, -1, True, 5.0)
    assert "never measured" in DiskFill.shortfall(m, 0.95)


def test_netem_arguments_never_pass_a_loss_correlation():
    n = Netem(host=None, loss_pct=20, delay_ms=50, jitter_ms=10, reorder_pct=5)  # type: ignore[arg-type]
    assert n.qdisc_args() == ["netem", "limit", "10000", "delay", "50ms", "10ms",
                              "reorder", "5%", "loss", "20%"]


def test_netem_shortfall_uses_the_binomial_tolerance():
    n = Netem(host=None, loss_pct=10, count=400)  # type: ignore[arg-type]
    shown = "qdisc netem 8001: root refcnt 2 limit 10000 loss 10%"
    ok = {"sent": 400, "received": 356, "loss_pct": 11.0, "rtt_median_ms": 0.5}
    assert n.shortfall(ok, shown) == ""
    far = {"sent": 400, "received": 396, "loss_pct": 1.0, "rtt_median_ms": 0.5}
    assert "far from" in n.shortfall(far, shown)
    assert "no netem qdisc" in n.shortfall(ok, "qdisc fq_codel 0: root")
    slow = Netem(host=None, delay_ms=100)  # type: ignore[arg-type]
    assert "short of the 100" in slow.shortfall(
        {"sent": 400, "received": 400, "loss_pct": 0.0, "rtt_median_ms": 1.0},
        "qdisc netem 8001: root delay 100ms")


def _elf_with_note(note_type: int) -> bytes:
    """An ELF64 header, one PT_NOTE program header and its note (name "Xen")."""
    import struct
    note = struct.pack("<III", 4, 8, note_type) + b"Xen\x00" + b"\x00" * 8
    phoff, note_at = 64, 64 + 56
    header = (b"\x7fELF\x02\x01\x01" + b"\x00" * 9
              + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, phoff, 0, 0, 64, 56, 1, 0, 0, 0))
    phdr = struct.pack("<IIQQQQQQ", 4, 4, note_at, 0, 0, len(note), len(note), 4)
    return header + phdr + note


def test_the_pvh_kernel_is_found_behind_the_bzimage_setup_and_checked():
    elf = _elf_with_note(qemu_image.XEN_ELFNOTE_PHYS32_ENTRY)
    bzimage = b"MZ setup code \x1f\x8b\x08 not a stream " + gzip.compress(elf) + b"trailer"
    assert qemu_image.pvh_kernel(bzimage) == elf
    assert qemu_image.pvh_kernel(gzip.compress(_elf_with_note(17))) is None  # no PVH entry
    assert not qemu_image.elf_has_pvh_entry(elf[:-4])   # a segment past the end: truncated
    assert qemu_image.pvh_kernel(b"no compressed payload at all") is None


def test_the_boot_kernel_is_the_pvh_elf_when_the_image_has_one(tmp_path: Path):
    (tmp_path / "vmlinuz").write_bytes(b"bz")
    assert qemu_image.boot_kernel(tmp_path).name == "vmlinuz"
    (tmp_path / "vmlinux").write_bytes(b"elf")
    assert qemu_image.boot_kernel(tmp_path).name == "vmlinux"


def test_the_host_tsc_rate_is_measured_consistently_and_agrees_with_cpuinfo():
    first, second = measure_tsc_khz(), measure_tsc_khz()
    assert first is not None and second is not None
    assert abs(first - second) / first < 0.005
    flags = Path("/proc/cpuinfo").read_text()
    if " tsc_known_freq" in flags:  # the kernel took the rate from the hypervisor: cpu MHz is it
        mhz = float(flags.split("cpu MHz")[1].split(":")[1].split()[0])
        assert abs(first / 1000 - mhz) / mhz < 0.005


def test_the_tsc_rate_is_measured_once_even_by_vms_booting_in_parallel():
    # a second measurement racing the first unmapped its page under it: a segfault
    with ThreadPoolExecutor(8) as pool:
        rates = set(pool.map(lambda _: host_tsc_khz(), range(8)))
    assert len(rates) == 1 and None not in rates


def test_a_tcg_guest_is_told_its_tsc_rate_and_a_kvm_guest_is_not():
    assert qemu_vm.clock_cmdline(qemu_vm.Accel("kvm", "test")) == ""
    tcg = qemu_vm.clock_cmdline(qemu_vm.Accel("tcg", "test"))
    assert tcg == f" tsc_early_khz={host_tsc_khz()} tsc=reliable"


def test_a_microvm_gets_mmio_devices_and_its_disks_in_order(tmp_path: Path):
    image = qemu_image.GuestImage(tmp_path, tmp_path / "vmlinux", tmp_path / "initrd.img",
                                  tmp_path / "rootfs.img", "6.1", "test", "ssh-ed25519 AAAA")
    vm = qemu_vm.Vm("repro-ab12-t", "t", image, qemu_vm.VmSpec(disks_mb=(100, 200)),
                    qemu_vm.Accel("kvm", "test"), tmp_path, tmp_path / "con.log", "rpab12t1",
                    "52:54:00:ab:12:01", "console=ttyS0")
    argv = vm.argv()
    assert argv[argv.index("-M") + 1].startswith("microvm,")
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    assert not [d for d in devices if "pci" in d], devices
    disks = [d.split("drive=")[1] for d in devices if d.startswith("virtio-blk-device")]
    drives = {d.split(",")[0][3:]: d for d in (argv[i + 1] for i, a in enumerate(argv)
                                                 if a == "-drive")}  # id=dN,... by its id
    assert [drives[d].split("file=")[1].split(",")[0] for d in disks] == [
        str(vm.root_disk), str(vm.disk(0)), str(vm.disk(1))]


def test_an_image_built_for_the_pc_machine_is_refused_with_how_to_rebuild(tmp_path: Path):
    d = qemu_image.image_root(tmp_path) / qemu_image.recipe_hash()
    d.mkdir(parents=True)
    (d / "host_key.pub").write_text("ssh-ed25519 AAAA\n")
    manifest = {"kernel_version": "6.1", "recipe": qemu_image.recipe_hash()}
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PrerequisiteError, match=r"built for the `pc` machine.*build it again"):
        qemu_image.find_image(tmp_path)
    (d / "manifest.json").write_text(json.dumps(manifest | {"machine": "microvm"}))
    assert qemu_image.find_image(tmp_path).directory == d


def test_the_login_files_go_by_fw_cfg_under_the_names_the_guest_copies(tmp_path: Path):
    image = qemu_image.GuestImage(tmp_path, tmp_path / "vmlinux", tmp_path / "initrd.img",
                                  tmp_path / "rootfs.img", "6.1", "test", "ssh-ed25519 AAAA")
    files = {qemu_guest.FW_CFG_PREFIX + name: tmp_path / f"a,b-{name}"
             for name in qemu_guest.FW_CFG_FILES}
    vm = qemu_vm.Vm("repro-ab12-t", "t", image, qemu_vm.VmSpec(), qemu_vm.Accel("kvm", "test"),
                    tmp_path, tmp_path / "con.log", "rpab12t1", "52:54:00:ab:12:01",
                    "console=ttyS0", files)
    argv = vm.argv()
    given = [argv[i + 1] for i, a in enumerate(argv) if a == "-fw_cfg"]
    assert given == [f"name={name},file={str(path).replace(',', ',,')}"
                     for name, path in files.items()]
    for name in qemu_guest.FW_CFG_FILES:  # the guest copies each into /root/.ssh
        assert name in qemu_guest.GUEST_INIT.split("for f in ")[1].split(";")[0].split()
    assert "/sys/firmware/qemu_fw_cfg/by_name/opt/repro\n" in qemu_guest.GUEST_INIT
