"""Machine images with their host init baked in: what `repro gate` compares.

Model: an ImageRef names one image and the backend that boots it:

  docker:NAME[:TAG]  a local Docker image whose command starts sshd (like the base
                     image); if it holds /etc/repro/host-init.sh its command runs
                     that first, as a machine runs its init before its services
  qemu:DIR           a QEMU guest image directory (vmlinuz, initrd.img, rootfs.img,
                     manifest.json, host_key.pub, optionally vmlinux: the layout
                     repro.harness.hosts.qemu.image builds); its init runs from busybox
                     init's `sysinit` entry
  ec2:ami-...        an EC2 AMI (`ami-...` alone also works): its init is whatever
                     the AMI runs at boot (the image pipeline bakes it in)

A bare name is a QEMU image if it is such a directory, else a Docker image.
`provider` is what `--repro-provider` takes to boot it (docker:NAME, ec2:AMI);
a QEMU image is handed to the QEMU backend by `environment()`: REPRO_CACHE
pointing at a directory where the image stands in for the cached guest image.

`bake_docker` / `bake_qemu` make such images from an init script (the local
analogue of an AMI pipeline, used by the gate's tests): a container of the
base image with the script committed as repro-<short>-<name> and labelled
repro.run=<run id>; a sparse copy of the guest image under the run's scratch
directory with the script and the sysinit line written into its ext4 root
with debugfs (no mount, no loop device). `repro cleanup` removes both.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from repro.harness import names
from repro.harness.errors import ConfigError, PrerequisiteError

if TYPE_CHECKING:
    from repro.harness.run import Run

INIT_PATH = "/etc/repro/host-init.sh"
INIT_LOG = "/var/log/repro-host-init.log"
DOCKER_CMD = ["/bin/sh", "-c", f"[ -f {INIT_PATH} ] && /bin/sh {INIT_PATH} > {INIT_LOG} 2>&1; "
              "exec /usr/sbin/sshd -D -e"]
SYSINIT = f"::sysinit:/bin/sh -c '/bin/sh {INIT_PATH} > {INIT_LOG} 2>&1'\n"
QEMU_FILES = ("vmlinuz", "initrd.img", "rootfs.img", "manifest.json", "host_key.pub")
BACKENDS = ("docker", "qemu", "ec2")
CMD_TIMEOUT_S = 300


@dataclass(frozen=True)
class ImageRef:
    backend: str  # docker | qemu | ec2
    ref: str      # image name, directory, AMI id

    def __str__(self) -> str:
        return f"{self.backend}:{self.ref}"

    @property
    def provider(self) -> str:
        return "qemu" if self.backend == "qemu" else f"{self.backend}:{self.ref}"

    def environment(self, scratch: Path) -> dict[str, str]:
        """Environment for a run on this image (QEMU: a cache where it is the guest image)."""
        if self.backend != "qemu":
            return {}
        from repro.harness.hosts.qemu.image import recipe_hash
        cache = scratch / f"cache-{re.sub(r'[^A-Za-z0-9]+', '-', self.ref).strip('-')}"
        link = cache / "qemu" / recipe_hash()
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(Path(self.ref).resolve(), target_is_directory=True)
        return {"REPRO_CACHE": str(cache)}


def parse(text: str) -> ImageRef:
    backend, sep, ref = text.partition(":")
    if sep and backend in BACKENDS and ref:
        return ImageRef(backend, ref)
    if re.fullmatch(r"ami-[0-9a-f]{8,17}", text):
        return ImageRef("ec2", text)
    if Path(text).is_dir():
        return ImageRef("qemu", str(Path(text).resolve()))
    if not text or text.startswith(("qemu:", "ec2:", "docker:")):
        raise ConfigError(f"not an image: {text!r} (docker:NAME, qemu:DIR or ec2:ami-...)")
    return ImageRef("docker", text)


def check(image: ImageRef) -> None:
    """Raise ConfigError unless the image exists where its backend looks for it."""
    if image.backend == "docker":
        import docker.errors

        from repro.harness.hosts.docker import client
        try:
            client().images.get(image.ref)
        except docker.errors.ImageNotFound as exc:
            raise ConfigError(f"no local Docker image {image.ref!r}") from exc
    elif image.backend == "qemu":
        missing = [f for f in QEMU_FILES if not (Path(image.ref) / f).is_file()]
        if missing:
            raise ConfigError(f"{image.ref}: not a QEMU guest image (missing "
                              f"{', '.join(missing)})")
    elif not re.fullmatch(r"ami-[0-9a-f]{8,17}", image.ref):
        raise ConfigError(f"not an AMI id: {image.ref!r}")


def bake_docker(run: Run, init: Path, name: str, base: str | None = None) -> ImageRef:
    """Commit `base` with `init` as its host init: image repro-<short>-<name>:latest."""
    from repro.harness.hosts.docker import BASE_IMAGE, client
    dc = client()
    labels = names.run_labels(run.run_id) | {"repro.image": "baked"}
    container = dc.containers.create(base or BASE_IMAGE, name=run.name(name, "bake"),
                                     labels=labels, command=["true"])
    try:
        buf = io.BytesIO()
        payload = init.read_bytes()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("etc/repro")  # /etc itself is left as the image has it
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
            info = tarfile.TarInfo(INIT_PATH.lstrip("/"))
            info.size, info.mode, info.mtime = len(payload), 0o755, int(time.time())
            tar.addfile(info, io.BytesIO(payload))
        container.put_archive("/", buf.getvalue())
        repo = run.name(name)
        container.commit(repository=repo, tag="latest", changes=[
            f"CMD {json.dumps(DOCKER_CMD)}",
            *(f"LABEL {k}={v}" for k, v in labels.items())])
    finally:
        container.remove(force=True)
    return ImageRef("docker", f"{repo}:latest")


def _debugfs(image: Path, commands: str, write: bool) -> str:
    """Run debugfs commands (one per line) on an ext4 image; `cat` output comes back."""
    argv = (["debugfs", "-w", "-f", "-", str(image)] if write else
            ["debugfs", "-R", commands.strip(), str(image)])
    try:
        p = subprocess.run(argv, input=commands, capture_output=True, text=True,
                           timeout=CMD_TIMEOUT_S, check=False)
    except FileNotFoundError as exc:
        raise PrerequisiteError("debugfs is not installed", "apt-get install e2fsprogs") from exc
    if p.returncode != 0:
        raise ConfigError(f"debugfs on {image} failed: {p.stderr.strip()[-200:]}")
    return p.stdout


def bake_qemu(run: Run, init: Path, name: str, base: Path | None = None) -> ImageRef:
    """Copy the guest image (sparse) and write `init` and a sysinit line into its root."""
    from repro.harness.hosts.qemu.image import find_image
    src = base or find_image().directory
    dest = run.scratch / "images" / run.name(name)
    dest.mkdir(parents=True)
    for f in [*QEMU_FILES, *(["vmlinux"] if (src / "vmlinux").is_file() else [])]:
        if f == "rootfs.img":
            subprocess.run(["cp", "--sparse=always", str(src / f), str(dest / f)], check=True,
                           timeout=CMD_TIMEOUT_S, capture_output=True)
        else:
            shutil.copy2(src / f, dest / f)
    rootfs = dest / "rootfs.img"
    inittab = _debugfs(rootfs, "cat /etc/inittab", write=False)
    inittab = "".join(line + "\n" for line in inittab.splitlines() if "sysinit" not in line)
    local_init, local_tab = dest / "host-init.sh", dest / "inittab"
    local_init.write_bytes(init.read_bytes())
    local_tab.write_text(SYSINIT + inittab)
    _debugfs(rootfs, "\n".join([
        "mkdir /etc/repro", f"write {local_init} {INIT_PATH}",
        f"sif {INIT_PATH} mode 0100755", f"sif {INIT_PATH} uid 0", f"sif {INIT_PATH} gid 0",
        "rm /etc/inittab", f"write {local_tab} /etc/inittab", "sif /etc/inittab mode 0100644",
        "sif /etc/inittab uid 0", "sif /etc/inittab gid 0", ""]), write=True)
    local_init.unlink()
    local_tab.unlink()
    return ImageRef("qemu", str(dest))


def remove(image: ImageRef) -> None:
    """Delete an image this module baked (Docker image or QEMU image directory)."""
    if image.backend == "docker":
        import docker.errors

        from repro.harness.hosts.docker import client
        with contextlib.suppress(docker.errors.ImageNotFound):
            client().images.remove(image.ref, force=True)
    elif image.backend == "qemu":
        shutil.rmtree(image.ref, ignore_errors=True)
