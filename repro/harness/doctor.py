"""`repro doctor`: what this machine can run, each prerequisite checked for real.

Model: a Check asks the machine one question the way the harness itself
would (ping the Docker daemon, look the image up, list nftables tables, boot
the guest kernel under KVM, read the guest kernel's config out of the root
filesystem image, ...) and answers with ok/not ok, what it found, and the
command that fixes it. `required` checks are what every run needs (the
Docker backend of the reference incident); the others enable one backend or
incident. Backends (docker, qemu, ec2, postgresql, mongodb) are available
when all their checks pass; `repro list` shows, per incident, the backends it
can use here and why not the others.

Nothing here sends traffic beyond this machine: the AWS check reads the
credential chain with the instance-metadata lookup turned off and makes no
API call (the region and AMI come from the environment, docs/ec2.md).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from repro.harness.spec import HOST_BACKENDS

CMD_TIMEOUT_S = 20


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = False
    backend: str = ""  # the backend this check enables ("" = the harness itself)


@dataclass(frozen=True)
class Backend:
    name: str
    available: bool
    why_not: str  # "" when available




def _cmd(argv: list[str], timeout: float = CMD_TIMEOUT_S) -> tuple[int | None, str]:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        return p.returncode, (p.stdout + p.stderr).strip()
    except FileNotFoundError:
        return None, f"{argv[0]}: not installed"
    except subprocess.TimeoutExpired:
        return None, f"{argv[0]}: no answer within {timeout:.0f} s"


def check_docker() -> list[Check]:
    import docker
    import docker.errors

    from repro.harness.hosts.docker import BASE_IMAGE
    try:
        dc = docker.from_env(timeout=10)
        version = dc.version().get("Version", "?")
    except docker.errors.DockerException as exc:
        return [Check("Docker daemon", False, f"does not answer: {str(exc)[:120]}",
                      "sudo setup/setup.sh docker", True, "docker")]
    out = [Check("Docker daemon", True, f"answers (Docker {version})", required=True,
                 backend="docker")]
    try:
        img = dc.images.get(BASE_IMAGE)
        out.append(Check("base host image", True, f"{BASE_IMAGE} ({img.short_id})",
                         required=True, backend="docker"))
    except docker.errors.ImageNotFound:
        out.append(Check("base host image", False, f"{BASE_IMAGE} is missing",
                         "sudo setup/setup.sh image", True, "docker"))
    return out


def check_nftables() -> Check:
    code, out = _cmd(["nft", "list", "tables"])
    if code == 0:
        return Check("nftables", True, "nft lists tables", required=True)
    return Check("nftables", False, out.splitlines()[-1] if out else "nft failed",
                 "apt-get install nftables; run as root", True)


def check_qemu() -> list[Check]:
    code, out = _cmd(["qemu-system-x86_64", "--version"])
    if code != 0:
        return [Check("QEMU", False, out or "qemu-system-x86_64 failed",
                      "sudo setup/setup.sh packages", backend="qemu")]
    checks = [Check("QEMU", True, out.splitlines()[0], backend="qemu")]
    from repro.harness.errors import PrerequisiteError
    from repro.harness.hosts.qemu.image import find_image
    try:
        image = find_image()
    except PrerequisiteError as exc:
        return [*checks, Check("QEMU guest image", False, exc.what, "sudo " + exc.fix.removeprefix(
            "run "), backend="qemu")]
    checks.append(Check("QEMU guest image", True, f"{image.directory.name}, kernel "
                        f"{image.kernel_version}", backend="qemu"))
    return checks


def check_guest_kernel() -> list[Check]:
    """KVM (booting the guest kernel under it for real) and netem in the guest kernel."""
    from repro.harness.errors import PrerequisiteError
    from repro.harness.hosts.qemu.image import find_image
    from repro.harness.hosts.qemu.vm import detect_accel
    try:
        image = find_image()
    except PrerequisiteError as exc:  # both need the guest kernel to answer
        kvm = Path("/dev/kvm").exists()
        return [Check("KVM", False, ("/dev/kvm is present; " if kvm else "no /dev/kvm; ")
                      + "whether it runs guests is probed with the guest image, not built yet",
                      "sudo " + exc.fix.removeprefix("run ")),
                Check("netem in the guest kernel", False, "unknown: the guest image is not "
                      "built", "sudo " + exc.fix.removeprefix("run "), backend="qemu")]
    accel = detect_accel(image)
    return [Check("KVM", accel.name == "kvm", f"{accel.name.upper()}: {accel.reason}",
                  "" if accel.name == "kvm" else "none needed: guests run under TCG (slower); "
                  "for KVM use a machine whose /dev/kvm runs guests"),
            _check_guest_netem(image.rootfs, image.kernel_version)]


def _check_guest_netem(rootfs: Path, kver: str) -> Check:
    """Read CONFIG_NET_SCH_NETEM from the guest kernel's config inside the root image."""
    code, out = _cmd(["debugfs", "-R", f"cat /boot/config-{kver}", str(rootfs)])
    m = re.search(r"^CONFIG_NET_SCH_NETEM=([ym])", out, re.M)
    if code == 0 and m:
        built = {"y": "built in", "m": "a module"}[m.group(1)]
        return Check("netem in the guest kernel", True, f"sch_netem is {built} in {kver}",
                     backend="qemu")
    return Check("netem in the guest kernel", False,
                 f"no CONFIG_NET_SCH_NETEM in {kver}'s config" if code == 0 else out[-120:],
                 "rebuild the guest image with a kernel that has netem (setup/setup.sh)",
                 backend="qemu")


def check_runner_netem() -> Check:
    release = os.uname().release
    mods = Path("/lib/modules") / release
    found = any(mods.rglob("sch_netem.ko*")) if mods.is_dir() else False
    code, _ = _cmd(["tc", "qdisc", "show"]) if found else (None, "")
    return Check("netem on this runner", found and code == 0,
                 "available" if found else f"not in this kernel ({release}): Docker hosts "
                 "lose packets through nftables and cannot be delayed; QEMU guests have netem",
                 "" if found else "none needed: use provider = \"qemu\" for delay/jitter faults")


def check_postgres() -> Check:
    from repro.harness.errors import PrerequisiteError
    from repro.harness.services.databases.postgres import find_bin_dir
    try:
        bin_dir = find_bin_dir()
    except PrerequisiteError as exc:
        return Check("PostgreSQL", False, exc.what, exc.fix, backend="postgresql")
    code, out = _cmd([str(bin_dir / "postgres"), "--version"])
    return Check("PostgreSQL", code == 0, out or "postgres --version failed",
                 "" if code == 0 else "apt-get install postgresql", backend="postgresql")


def check_mongod() -> Check:
    path = shutil.which("mongod")
    if not path:
        return Check("mongod", False, "not installed (Debian ships no MongoDB server)",
                     "printf '[mongo_index_lock]\\ndb = \"mongodb://HOST:27017\"\\n' "
                     "> mongo.toml && repro run mongo_index_lock --config mongo.toml",
                     backend="mongodb")
    code, out = _cmd([path, "--version"])
    return Check("mongod", code == 0, out.splitlines()[0] if out else path, backend="mongodb")


def check_aws() -> list[Check]:
    """Credentials from the environment/config files only: no metadata service, no API call."""
    from repro.harness.extras import have
    if not have("botocore"):
        return [Check("AWS credentials", False, "boto3 is not installed (the 'ec2' extra)",
                      "pip install 'pytest-repro[ec2]'", backend="ec2")]
    import botocore.session

    from repro.harness.hosts.ec2 import Ec2Settings, resolve_region
    before = os.environ.get("AWS_EC2_METADATA_DISABLED")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    try:
        creds = botocore.session.get_session().get_credentials()
    finally:
        if before is None:
            del os.environ["AWS_EC2_METADATA_DISABLED"]
        else:
            os.environ["AWS_EC2_METADATA_DISABLED"] = before
    settings = Ec2Settings.from_env()
    out = [Check("AWS credentials", creds is not None,
                 f"from {creds.method}" if creds else "none found in the environment or "
                 "~/.aws", "export AWS_PROFILE=... (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY);"
                 " see docs/ec2.md", backend="ec2")]
    missing = settings.missing()
    _, region_from = resolve_region()
    out.append(Check("EC2 settings", not missing,
                     f"region {settings.region} (from {region_from}), AMI {settings.ami}, cap "
                     f"{settings.max_instances} instances" if not missing else
                     f"not set: {', '.join(missing)}",
                     "" if not missing else f"export {' '.join(m + '=...' for m in missing)}"
                     " (docs/ec2.md)", backend="ec2"))
    return out


def check_chromium() -> Check:
    path = shutil.which("chromium")
    if not path:
        return Check("Chromium", False, "not installed (renders the HTML report in its test)",
                     "sudo setup/setup.sh packages")
    code, out = _cmd([path, "--version"], timeout=30)
    said = [line for line in out.splitlines() if line.startswith("Chromium")]
    return Check("Chromium", code == 0 and bool(said), said[0] if said else out[-120:],
                 "" if said else "apt-get install --reinstall chromium")


def check_debugfs() -> Check:
    path = shutil.which("debugfs")
    return Check("debugfs", bool(path), path or "not installed (bakes host init into QEMU "
                 "images, reads the guest kernel config)", "" if path else
                 "apt-get install e2fsprogs", backend="qemu")


Probe = Callable[[], "Check | list[Check]"]
# what decides whether a backend is available (quick: `repro list` runs these)


def check_ssh_hosts() -> Check:
    """Existing machines come from the configuration's [hosts] table, which doctor is not
    given: say where they are declared rather than guess."""
    return Check("ssh hosts", False, "existing machines are named in the configuration's "
                 "[hosts] table (repro doctor reads no configuration)",
                 "add [hosts.roles] to your --config file, see docs/ssh.md", backend="ssh")


BACKEND_CHECKS: list[Probe] = [check_docker, check_nftables, check_debugfs, check_qemu,
                               check_postgres, check_mongod, check_aws, check_ssh_hosts]
CHECKS: list[Probe] = [*BACKEND_CHECKS, check_guest_kernel, check_runner_netem, check_chromium]


def run_checks(probes: list[Probe] | None = None) -> list[Check]:
    out: list[Check] = []
    for fn in probes or CHECKS:
        try:
            got = fn()
        except Exception as exc:  # a check that crashes says so; it never reads as ok
            got = Check(fn.__name__.removeprefix("check_"), False,
                        f"check crashed: {type(exc).__name__}: {exc}")
        out += got if isinstance(got, list) else [got]
    return out


def backends(checks: list[Check]) -> dict[str, Backend]:
    found = {}
    for name in (*HOST_BACKENDS, "postgresql", "mongodb"):
        mine = [c for c in checks if c.backend == name or (name in ("docker", "qemu")
                                                            and c.name == "nftables")]
        failing = [c for c in mine if not c.ok]
        found[name] = Backend(name, bool(mine) and not failing,
                              "; ".join(f"{c.name}: {c.detail}" for c in failing)
                              or ("" if mine else "not checked"))
    return found


def incident_backends(name: str) -> tuple[str, ...]:
    """What the incident's spec says it can run on."""
    from repro.harness import incidents
    return incidents.INCIDENTS[name].backends
