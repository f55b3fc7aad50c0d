"""A run: its id, scratch directory, report directory, login key and history.

Model: one Run per pytest session (or per CLI invocation). It owns
`/tmp/repro-<short id>/` (scratch: keys, pcaps in flight) whose `owner.pid`
tells later runs whether the run is still alive, and `reports/<run id>/`
(kept). Everything on the machine is named after the run (repro.harness.names).
Closing a run deletes its scratch directory; its reports stay.

Links in the reports folder: `reports/in-progress` points at the newest run started
that has not finished (removed when that run finishes or is found abandoned),
`reports/latest` at the newest *finished* run: a run is never `latest` while it runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from repro.harness import names
from repro.harness.procs import start_ticks
from repro.harness.sshkeys import KeyPair, generate_keypair

SCRATCH_ROOT = Path(tempfile.gettempdir())


@dataclass
class Run:
    run_id: str
    scratch: Path
    reports: Path
    key: KeyPair

    @property
    def short(self) -> str:
        return names.short(self.run_id)

    def name(self, *parts: str) -> str:
        return names.object_name(self.run_id, *parts)

    def iface(self, role: str) -> str:
        return names.iface_name(self.run_id, role)

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


def start_run(reports_root: Path, run_id: str | None = None, folder: str = "") -> Run:
    """`folder`: the report folder's name when it is not the run id (a shard's)."""
    run_id = run_id or names.new_run_id()
    scratch = SCRATCH_ROOT / names.object_name(run_id)
    _make_owned(scratch, f"{os.getpid()}\n{run_id}\n{start_ticks(os.getpid())}\n")
    reports = reports_root / (folder or run_id)
    reports.mkdir(parents=True, exist_ok=True)
    return Run(run_id=run_id, scratch=scratch, reports=reports,
               key=generate_keypair(scratch / "id_ed25519"))


def _make_owned(scratch: Path, owner: str) -> None:
    """The scratch dir appears with its owner.pid already in it (pid, run id, the pid's
    start time: a later reuse of the pid is not this run), so a concurrent cleanup never
    sees it ownerless: it is made under a hidden name and renamed into place."""
    if (scratch / "owner.pid").is_file():
        (scratch / "owner.pid").write_text(owner)
        return
    tmp = Path(tempfile.mkdtemp(prefix=f".{scratch.name}-", dir=scratch.parent))
    (tmp / "owner.pid").write_text(owner)
    try:
        tmp.rename(scratch)
    except OSError:  # it appeared meanwhile (the same run id started twice)
        shutil.rmtree(tmp, ignore_errors=True)
        scratch.mkdir(mode=0o700, exist_ok=True)
        (scratch / "owner.pid").write_text(owner)


LATEST, IN_PROGRESS = "latest", "in-progress"


def point_latest(reports_root: Path, run: Run) -> None:
    """The run has finished: `latest` points at it (and `in-progress` no longer does)."""
    point_latest_to(reports_root, run.reports.name, run.short)


def point_latest_to(reports_root: Path, folder: str, tag: str = "") -> None:
    point_link(reports_root, LATEST, folder, tag)
    clear_link(reports_root, IN_PROGRESS, folder)


def point_in_progress(reports_root: Path, run: Run) -> None:
    point_link(reports_root, IN_PROGRESS, run.reports.name, run.short)


def point_link(reports_root: Path, link: str, folder: str, tag: str = "") -> None:
    """reports_root/link -> folder, replaced atomically (a reader sees the old or the new)."""
    tmp = reports_root / f".{link}-{tag or os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(folder)
    tmp.replace(reports_root / link)


def clear_link(reports_root: Path, link: str, folder: str) -> None:
    """Remove reports_root/link if it points at `folder` (another run's link stays)."""
    path = reports_root / link
    try:
        if os.readlink(path) == folder:
            path.unlink()
    except OSError:  # no link there, or another run removed it first
        pass
