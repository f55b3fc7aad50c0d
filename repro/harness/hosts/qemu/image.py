"""The QEMU guest image: Debian's cloud kernel + a tiny initramfs + a debootstrapped root.

Model: one image per *recipe* (suite, package list, kernel meta-package, the
guest boot scripts in qemu_guest.py and this builder's version); its hash names
the directory `.cache/qemu/<hash>/` holding

  vmlinuz        the kernel of the linux-image-*-cloud-amd64 package that
                 linux-image-cloud-amd64 depends on (downloaded, dpkg -x, never
                 installed on the runner)
  vmlinux        the same kernel uncompressed (ELF), when it has a PVH entry note:
                 QEMU starts it in 64-bit mode, past the bzImage's real-mode set-up
                 and its decompression (0.5-1 s of a boot under TCG); else vmlinuz boots
  initrd.img     gzip'd newc cpio: static busybox, the virtio modules, /init
  rootfs.img     raw ext4 made with `mkfs.ext4 -d` (no loop devices needed);
                 VMs boot copy-on-write qcow2 overlays of it
  manifest.json  kernel version, package list, sizes, build time

A build happens in `.cache/qemu/.build-<hash>` and is renamed into place when
complete, so a half-built image is never used; a second set-up finds the
directory and repeats nothing. Older recipes' directories are removed.
Run as `python -m repro.harness.hosts.qemu.image build` (setup/steps/20-qemu-image.sh).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from repro.harness.errors import PrerequisiteError
from repro.harness.hosts.qemu import guest as qemu_guest

ROOT = Path(__file__).resolve().parents[4]  # repro/harness/hosts/qemu/image.py -> checkout
CACHE = Path(os.environ.get("REPRO_CACHE", ROOT / ".cache"))
SUITE = "bookworm"
KERNEL_META = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
MACHINE = "microvm"  # the QEMU machine the initramfs's drivers are for (vm.MACHINE)
PACKAGES = ("openssh-server", "openssh-client", "iproute2", "nftables", "iputils-ping",
            "procps", "git", "ethtool", "tcpdump", "netcat-openbsd", "ca-certificates",
            "python3-minimal", "e2fsprogs", "lvm2", "psmisc", "kmod", "util-linux",
            "prometheus-node-exporter")  # reboot_blindspot scrapes it
BUILDER_VERSION = "7"
ROOTFS_HEADROOM_MB = 768


@dataclass(frozen=True)
class GuestImage:
    directory: Path
    kernel: Path
    initrd: Path
    rootfs: Path
    kernel_version: str
    recipe: str
    host_key: str  # the baked sshd host key (public line): logins pin it


def recipe_text() -> str:
    g = qemu_guest
    return "\n".join([f"builder {BUILDER_VERSION}", f"suite {SUITE}", f"kernel {KERNEL_META}",
                      "packages " + ",".join(PACKAGES), g.INITRAMFS_INIT, g.GUEST_INIT, g.INITTAB,
                      g.SSHD_CONFIG, g.LVM_LOCAL, g.FIXUP, " ".join(g.INITRAMFS_MODULES)])


def recipe_hash() -> str:
    return hashlib.sha256(recipe_text().encode()).hexdigest()[:12]


def image_root(cache: Path = CACHE) -> Path:
    return cache / "qemu"


def find_image(cache: Path = CACHE) -> GuestImage:
    """The image of the current recipe, or PrerequisiteError saying how to build it."""
    d = image_root(cache) / recipe_hash()
    manifest = d / "manifest.json"
    if not manifest.is_file():
        raise PrerequisiteError(f"QEMU guest image for recipe {recipe_hash()} is not built",
                                "run setup/setup.sh (step setup/steps/20-qemu-image.sh)")
    data = json.loads(manifest.read_text())
    if data.get("machine") != MACHINE:
        raise PrerequisiteError(f"QEMU guest image {d} was built for the `pc` machine (its "
                                f"initramfs has no virtio-mmio driver; guests boot on {MACHINE})",
                                "build it again: python -m repro.harness.hosts.qemu.image build")
    return GuestImage(d, boot_kernel(d), d / "initrd.img", d / "rootfs.img",
                      data["kernel_version"], data["recipe"],
                      (d / "host_key.pub").read_text().strip())


def boot_kernel(d: Path) -> Path:
    """The kernel file QEMU boots in image directory `d`: the PVH ELF if there is one."""
    return d / "vmlinux" if (d / "vmlinux").is_file() else d / "vmlinuz"


# A bzImage's payload by its compressor's magic, with the decompressor that reads it to
# the end of its stream (the kernel's scripts/extract-vmlinux tries the same in turn).
DECOMPRESSORS = ((b"\x02\x21\x4c\x18", ("lz4", "-dc")), (b"\x28\xb5\x2f\xfd", ("zstd", "-dcq")),
                 (b"\xfd7zXZ\x00", ("xz", "-dc")), (b"\x1f\x8b\x08", ("gzip", "-dc")))
PT_NOTE, XEN_ELFNOTE_PHYS32_ENTRY = 4, 18


def pvh_kernel(bzimage: bytes) -> bytes | None:
    """The uncompressed ELF kernel inside `bzimage` if it is complete and has a PVH entry
    note (QEMU refuses an ELF kernel without one), else None."""
    for magic, cmd in DECOMPRESSORS:
        if shutil.which(cmd[0]) is None:
            continue
        start = bzimage.find(magic)
        for _ in range(3):  # the magic can occur by chance before the payload
            if start < 0:
                break
            try:
                out = subprocess.run(cmd, input=bzimage[start:], capture_output=True,
                                     timeout=120, check=False).stdout  # trailing bytes: rc 1
            except subprocess.TimeoutExpired:
                out = b""
            if elf_has_pvh_entry(out):
                return out
            start = bzimage.find(magic, start + 1)
    return None


def elf_has_pvh_entry(elf: bytes) -> bool:
    """A complete ELF64 (every segment within the bytes) with Xen's PHYS32_ENTRY note."""
    if elf[:5] != b"\x7fELF\x02" or len(elf) < 64:
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    found = False
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", elf,
                                                                  phoff + i * phentsize)
        if p_offset + p_filesz > len(elf):
            return False
        if p_type == PT_NOTE:
            found = found or _has_note(elf[p_offset:p_offset + p_filesz], b"Xen\x00",
                                       XEN_ELFNOTE_PHYS32_ENTRY)
    return found


def _has_note(notes: bytes, name: bytes, kind: int) -> bool:
    at = 0
    while at + 12 <= len(notes):
        namesz, descsz, note_type = struct.unpack_from("<III", notes, at)
        at += 12
        if notes[at:at + namesz] == name and note_type == kind:
            return True
        at += (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def _run(cmd: list[str], log: TextIO, timeout: float, cwd: Path | None = None) -> str:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                           check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{cmd[0]} timed out after {timeout:.0f} s") from exc
    log.write(p.stdout + p.stderr)
    log.flush()
    if p.returncode != 0:
        tail = " | ".join((p.stdout + p.stderr).strip().splitlines()[-3:])
        raise RuntimeError(f"{' '.join(cmd[:3])} exited {p.returncode}: {tail}")
    return p.stdout


def debian_mirror() -> str:
    """Where Debian's packages are reachable, from the machine's own apt configuration."""
    pattern = re.compile(r"^(?:URIs:|deb)\s+(https?://\S+/debian/?)\s*", re.M)
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.is_file():
            for m in pattern.finditer(path.read_text(errors="replace")):
                if "security" not in m.group(1):
                    return m.group(1)
    raise PrerequisiteError("no Debian mirror in /etc/apt/sources.list*", "add one")


def kernel_package(log: TextIO) -> str:
    out = _run(["apt-cache", "depends", KERNEL_META], log, 60)
    m = re.search(r"Depends:\s+(linux-image-\S+-cloud-amd64)", out)
    if not m:
        raise RuntimeError(f"{KERNEL_META} names no linux-image-*-cloud-amd64 dependency")
    return m.group(1)


def _download(package: str, into: Path, log: TextIO) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    os.chmod(into, 0o777)  # lets apt's sandbox user write there
    _run(["apt-get", "download", package], log, 600, cwd=into)
    debs = sorted(into.glob(f"{package}_*.deb"))
    if not debs:
        raise RuntimeError(f"apt-get download {package} left no .deb")
    return debs[-1]


def _cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (name, mode, data); directories have mode 0o040755."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        nb = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0]
        out.write(b"070701" + b"".join(f"{f:08X}".encode() for f in fields) + nb)
        out.write(b"\0" * ((4 - (110 + len(nb)) % 4) % 4))
        out.write(data)
        out.write(b"\0" * ((4 - len(data) % 4) % 4))
    return out.getvalue()


def build_initramfs(busybox: Path, modules_dir: Path) -> bytes:
    entries: list[tuple[str, int, bytes]] = [("bin", 0o040755, b""), ("modules", 0o040755, b""),
                                             ("dev", 0o040755, b""), ("proc", 0o040755, b""),
                                             ("sys", 0o040755, b""), ("newroot", 0o040755, b"")]
    entries.append(("bin/busybox", 0o100755, busybox.read_bytes()))
    entries.append(("bin/sh", 0o120777, b"busybox"))
    order = []
    for rel in qemu_guest.INITRAMFS_MODULES:
        base = Path(rel).name
        entries.append((f"modules/{base}", 0o100644, (modules_dir / rel).read_bytes()))
        order.append(base)
    entries.append(("modules.order", 0o100644, ("\n".join(order) + "\n").encode()))
    entries.append(("init", 0o100755, qemu_guest.INITRAMFS_INIT.encode()))
    return gzip.compress(_cpio_newc(entries), compresslevel=6)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def build(cache: Path = CACHE, log: TextIO | None = None) -> tuple[GuestImage, float]:
    """Build the current recipe's image unless it exists; returns it and the seconds spent."""
    t0 = time.monotonic()
    h = recipe_hash()
    final = image_root(cache) / h
    if (final / "manifest.json").is_file():
        return find_image(cache), time.monotonic() - t0
    if os.geteuid() != 0:
        raise PrerequisiteError("building the QEMU image needs root", "run setup/setup.sh as root")
    logf = log or sys.stderr
    work = image_root(cache) / f".build-{h}"
    _remove_build_dir(work)
    work.mkdir(parents=True)
    try:
        _build_into(work, h, t0, logf)
    except BaseException:
        boot_log = work / "rootfs/debootstrap/debootstrap.log"
        if boot_log.is_file():
            logf.write("--- debootstrap.log (tail) ---\n" + boot_log.read_text(
                errors="replace")[-4000:] + "\n")
        _remove_build_dir(work)
        raise
    work.rename(final)
    for old in image_root(cache).iterdir():
        if old.name != h and old.is_dir() and not old.name.startswith(".build-"):
            shutil.rmtree(old, ignore_errors=True)
    return find_image(cache), time.monotonic() - t0


def _remove_build_dir(work: Path) -> None:
    """rm -rf a build directory, after unmounting what debootstrap left mounted in it
    (a failed debootstrap can leave the chroot's /proc mounted: never recurse into it)."""
    prefix = str(work.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if line.split()[1].startswith(prefix)]
    for m in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True, timeout=60, check=False)
    still = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
             if line.split()[1].startswith(prefix)]
    if still:
        raise RuntimeError(f"cannot unmount {still[0]}; remove {work} by hand")
    shutil.rmtree(work, ignore_errors=True)


def _build_into(work: Path, h: str, t0: float, logf: TextIO) -> None:
    root = work / "rootfs"
    _run(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE,
          str(root), debian_mirror()], logf, 1500)
    kpkg = kernel_package(logf)
    kdeb = _download(kpkg, work / "debs", logf)
    bdeb = _download(BUSYBOX_PACKAGE, work / "debs", logf)
    _run(["dpkg-deb", "-x", str(kdeb), str(work / "kernel")], logf, 300)
    _run(["dpkg-deb", "-x", str(bdeb), str(work / "busybox")], logf, 60)
    kver = next((work / "kernel/lib/modules").iterdir()).name
    shutil.copy2(work / "kernel/boot" / f"vmlinuz-{kver}", work / "vmlinuz")
    elf = pvh_kernel((work / "vmlinuz").read_bytes())
    if elf is not None:
        (work / "vmlinux").write_bytes(elf)
    log_line = "PVH ELF kernel extracted" if elf else "no PVH ELF kernel: the bzImage boots"
    logf.write(log_line + "\n")
    shutil.copytree(work / "kernel/lib/modules" / kver, root / "lib/modules" / kver)
    shutil.copy2(work / "kernel/boot" / f"config-{kver}", root / "boot" / f"config-{kver}")
    busybox = work / "busybox/bin/busybox"
    (root / "usr/lib/repro").mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "usr/lib/repro/busybox")
    g = qemu_guest
    _write(root / "sbin/repro-init", g.GUEST_INIT, 0o755)
    _write(root / "etc/inittab", g.INITTAB)
    _write(root / "etc/ssh/sshd_config.d/repro.conf", g.SSHD_CONFIG)
    _write(root / "etc/lvm/lvmlocal.conf", g.LVM_LOCAL)
    _run(["chroot", str(root), "/bin/sh", "-c", g.FIXUP], logf, 300)
    shutil.copy2(root / "etc/ssh/ssh_host_ed25519_key.pub", work / "host_key.pub")
    _run(["chroot", str(root), "depmod", kver], logf, 300)
    (work / "initrd.img").write_bytes(build_initramfs(busybox, root / "lib/modules" / kver))
    used_mb = int(_run(["du", "-sm", "-x", str(root)], logf, 120).split()[0])
    size_mb = used_mb + ROOTFS_HEADROOM_MB
    _run(["mkfs.ext4", "-q", "-F", "-L", "reproroot", "-d", str(root), str(work / "rootfs.img"),
          f"{size_mb}M"], logf, 600)
    manifest = {"recipe": h, "kernel_package": kpkg, "kernel_version": kver, "suite": SUITE,
                "packages": list(PACKAGES), "rootfs_mb": size_mb,
                "kernel_boot": "pvh" if elf else "bzimage", "machine": MACHINE,
                "build_s": round(time.monotonic() - t0, 1), "built": time.time()}
    shutil.rmtree(root)
    shutil.rmtree(work / "kernel")
    shutil.rmtree(work / "busybox")
    shutil.rmtree(work / "debs")
    _write(work / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repro.harness.hosts.qemu.image")
    parser.add_argument("action", choices=["build", "hash", "show"])
    args = parser.parse_args(argv)
    if args.action == "hash":
        print(recipe_hash())
        return 0
    try:
        if args.action == "show":
            img = find_image()
            print(json.dumps(json.loads((img.directory / "manifest.json").read_text()), indent=2))
            return 0
        log_path = CACHE / "logs" / "qemu-image.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as log:
            img, spent = build(CACHE, log)
    except PrerequisiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: QEMU image build failed: {exc} (log: .cache/logs/qemu-image.log)",
              file=sys.stderr)
        return 1
    print(f"QEMU guest image {img.recipe} (kernel {img.kernel_version}) ready in {spent:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
