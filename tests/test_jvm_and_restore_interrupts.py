"""container_awareness and cache_restore interrupted mid-run leave nothing behind.

Ctrl-C while the JVM service serves its load (or while the restore streams into the
targets) removes every host, network and scratch dir of the run; a SIGKILL of the runner
alone leaves its hosts, which `repro cleanup` removes. What counts as left behind is
tests.leftovers' list (containers, networks, nft tables, scratch dirs, java processes).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.interrupted_run import ROOT, docker_out, start_run
from tests.leftovers import leftovers

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _runs(short: str, role: str, program: str) -> bool:
    """Whether `program` is among the processes of the run's `role` container."""
    out = docker_out("top", f"repro-{short}-{role}", "-o", "pid,comm")
    return program in out.split()


def jvm_serving(short: str) -> bool:
    return _runs(short, "service", "java")


def restore_streaming(short: str) -> bool:
    return _runs(short, "build", "ssh")


CASES = {
    "container_awareness": (
        f'[container_awareness]\njava_options = "{ROOT}/fixtures/container_awareness/'
        'fixed.options"\n', jvm_serving),
    "cache_restore": (
        f'[cache_restore]\nrestore = "{ROOT}/fixtures/cache_restore/fixed.sh"\n',
        restore_streaming),
}


# Seen once in CI before repro.harness.interrupts (container_awareness): the run removed
# everything, then deadlocked at exit in urllib3's pool finalizer, on a queue lock the
# KeyboardInterrupt had left held. Now the interrupt waits for library calls to return,
# and a hung exit would end as 128 + SIGINT instead of pytest's "interrupted" status.
@pytest.mark.parametrize("incident", sorted(CASES))
def test_ctrl_c_mid_run_removes_everything(tmp_path: Path, incident: str) -> None:
    table, moment = CASES[incident]
    proc, short = start_run(tmp_path, incident, table, moment)
    os.kill(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        pytest.fail("the interrupted run had not exited 90 s after Ctrl-C")
    assert leftovers(short) == []
    assert proc.returncode != 128 + signal.SIGINT, "an exit handler hung after Ctrl-C"
    assert proc.returncode == pytest.ExitCode.INTERRUPTED


@pytest.mark.parametrize("incident", sorted(CASES))
def test_after_sigkill_repro_cleanup_leaves_nothing(tmp_path: Path, incident: str) -> None:
    table, moment = CASES[incident]
    proc, short = start_run(tmp_path, incident, table, moment)
    os.kill(proc.pid, signal.SIGKILL)  # the runner alone, not its process group
    proc.wait(timeout=30)
    assert any(x.startswith("container") for x in leftovers(short)), \
        "SIGKILL should leave the hosts"
    subprocess.run([str(ROOT / ".venv" / "bin" / "repro"), "cleanup"], capture_output=True,
                   text=True, timeout=120, check=True)
    assert leftovers(short) == []
