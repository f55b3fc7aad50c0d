"""A mongo_index_lock run interrupted mid-storm leaves nothing behind: Ctrl-C and
SIGTERM stop the PostgreSQL server, kill the instances and delete the data
directory; after SIGKILL, the clean-up a new run starts with (repro.harness.cleanup)
kills the orphaned instances (found by the run id in their environment) and
stops the orphaned server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from repro.harness import cleanup
from repro.harness import procs as _process

pytestmark = [pytest.mark.mongo, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


def _pids_with(text: str) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and any(text in a for a in _process.cmdline(int(p.name)))]


# the pre-fix start-up, then a hang: an instance that outlives its runner's connections
# (when the runner dies its 60 s transaction is rolled back and the queue moves on)
HANG_AFTER = """import runpy, time
try:
    runpy.run_path({prefix!r}, run_name="__main__")
except SystemExit:
    pass
time.sleep(300)
"""


def start_blocked_storm(tmp_path: Path, hang: bool = False
                        ) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """A pre-fix run whose instances sit in the lock queue behind a 60 s transaction
    (with `hang`, and then stay up whatever happens to the runner)."""
    startup = tmp_path / "startup_under_interrupt.py"
    prefix = ROOT / "fixtures" / "mongo_index_lock" / "prefix.py"
    if hang:
        startup.write_text(HANG_AFTER.format(prefix=str(prefix)))
    else:
        shutil.copy(prefix, startup)
    cfg = tmp_path / "blocked.toml"
    cfg.write_text(f'[mongo_index_lock]\nservice_startup = "{startup}"\ninstances = 6\n'
                   "waves = 1\nbatch_txn_s = 60.0\nbaseline_s = 0.5\nworkload_rate = 40.0\n")
    log = tmp_path / "child.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", str(ROOT / "repro" / "mongo_index_lock"),
             "-k", "under_test", "--repro-config", str(cfg),
             "--repro-reports", str(tmp_path / "reports")],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def blocked() -> Path | None:
        assert proc.poll() is None, ("the run ended before its storm started:\n"
                                     + log.read_text(errors="replace")[-3000:])
        for owner in Path("/tmp").glob("repro-*/owner.pid"):
            if (owner.read_text().split()[0] == str(proc.pid)
                    and list(owner.parent.glob("repro-pg-*"))
                    and len(_pids_with(startup.name)) >= 6):
                return owner.parent
        return None

    try:
        scratch = _process.wait_for(blocked, timeout=90, interval=0.2, what="storm running")
    except BaseException:
        proc.kill()
        raise
    return proc, scratch, startup


def _servers_of(scratch: Path) -> list[int]:
    return [p for p in _pids_with(str(scratch)) if _process.cmdline(p)[0].endswith("postgres")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_mid_storm_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    proc, scratch, startup = start_blocked_storm(tmp_path)
    assert _servers_of(scratch)
    os.kill(proc.pid, sig)
    proc.wait(timeout=90)
    assert _servers_of(scratch) == []
    assert _pids_with(startup.name) == []
    assert not scratch.exists()


def test_after_sigkill_cleanup_kills_the_instances_and_stops_the_server(tmp_path: Path
                                                                       ) -> None:
    proc, scratch, startup = start_blocked_storm(tmp_path, hang=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    servers = _servers_of(scratch)
    assert servers, "a SIGKILLed run should have left its server behind"
    instances = _pids_with(startup.name)
    assert len(instances) >= 6, "a SIGKILLed run should have left its instances behind"
    # what every new run does first: reap dead runs' leftovers (live runs, e.g. other
    # sessions' on a shared machine, are spared, unlike `repro cleanup`)
    out = "\n".join(cleanup.reap(all_runs=False))
    assert f"postgres pid {servers[0]}" in out
    assert _servers_of(scratch) == [] and not scratch.exists()
    # these instances would sleep 300 s whatever happened to the database: only the
    # storm's reaper kills them (this one, or that of another run starting meanwhile on
    # a shared machine, which is why `out` need not list them)
    assert [p for p in instances if _process.pid_alive(p)] == [], out
