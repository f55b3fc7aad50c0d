"""Provenance: what a result was judged on, so a gate decision can be audited and re-run.

Model: two records.

  of the run     (results.json "provenance"): the harness's version and git commit (with
                 whether the checkout had changes), Python, the runner's kernel (what
                 every Docker host runs), the Docker base image's id, the QEMU guest
                 image's recipe hash and kernel, whether guests ran with KVM or emulated
                 (TCG), as the run's first guest found it
  of a result    (its "provenance"): every key of the incident's table as it ran (the
                 whole resolved configuration, profile applied), and for each file it
                 names (scripts, rule files, JVM options...) its sha256 and a copy under
                 the result's folder `inputs/`, so the report holds what was tested, not
                 only its name; the seeds among the keys (anything named *seed*: the
                 Hypothesis searches, generated repositories, drawn loss patterns)

`repro run --again RUN` (repro.harness.replay) turns a result's record back into a
configuration and says what differs between then and now.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

CMD_TIMEOUT_S = 10.0
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _out(argv: list[str], cwd: Path | None = None) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=CMD_TIMEOUT_S,
                             check=False, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return res.stdout.strip() if res.returncode == 0 else ""


DISTRIBUTION = "pytest-repro"  # the name on PyPI; the command and import package are `repro`


def harness_version() -> str:
    """The installed distribution's version, whose one source is `repro.__version__`
    (pyproject reads it at build). Not `import repro`: in a test session rooted elsewhere a
    folder named repro/ can stand in for the package (a namespace package, no version)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def version_line() -> str:
    """`repro --version`: the version, and the harness commit when run from a checkout."""
    commit, dirty = checkout_commit()
    where = f", commit {commit[:12]}{' (changed)' if dirty else ''}" if commit else ""
    return f"repro {harness_version()} ({DISTRIBUTION}{where})"


def checkout_commit() -> tuple[str, bool]:
    """(the harness's commit, whether its tracked files changed) when it runs from a git
    checkout of its own; ("", False) when installed from a wheel (site-packages may sit
    inside somebody else's repository: only a .git beside the package counts)."""
    if not (PACKAGE_ROOT / ".git").exists():
        return "", False
    commit = _out(["git", "rev-parse", "HEAD"], PACKAGE_ROOT)
    dirty = bool(_out(["git", "status", "--porcelain", "--untracked-files=no"], PACKAGE_ROOT))
    return commit, dirty


def of_run() -> dict[str, Any]:
    commit, dirty = checkout_commit()
    return {"harness_version": harness_version(), "commit": commit or "not a git checkout",
            "checkout_changed": dirty if commit else None, "python": sys.version.split()[0],
            "runner_kernel": platform.release(), "docker_image": _docker_image(),
            **_qemu_image()}


def _docker_image() -> str:
    return _out(["docker", "image", "inspect", "--format", "{{.Id}}", "repro-base:latest"])


def _qemu_image() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with contextlib.suppress(Exception):  # no QEMU backend here: say nothing of it
        from repro.harness.hosts.qemu.image import find_image, recipe_hash
        out["qemu_image"] = recipe_hash()
        out["qemu_mode"] = qemu_mode()
        out["qemu_kernel"] = find_image().kernel_version
    return out


def qemu_mode() -> str:
    """KVM or TCG as this process's guests found it ("" before a guest was started)."""
    from repro.harness.hosts.qemu import vm
    accel = vm._accel  # the probe's cached answer: probing here would boot a kernel
    return accel.name.upper() if accel is not None else ""


def of_config(cfg: Any, outdir: Path) -> dict[str, Any]:
    """The configuration's values, its files (hash + a copy in outdir/inputs/) and seeds."""
    if not dataclasses.is_dataclass(cfg):
        return {}
    values: dict[str, Any] = {}
    files: dict[str, dict[str, str]] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        values[f.name] = str(value) if isinstance(value, Path) else value
        if isinstance(value, Path) and value.is_file():
            copy = outdir / "inputs" / f.name / value.name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(value, copy)
            files[f.name] = {"path": str(value), "sha256": sha256(value),
                             "copy": str(copy.relative_to(outdir))}
    seeds = {k: v for k, v in values.items() if "seed" in k}
    return {"values": values, "files": files, "seeds": seeds}
