"""blackhole_replica and backlog_drain interrupted while replicas are frozen leave nothing
behind: Ctrl-C thaws them, stops the caller (or the resolution check) and the three
servers and deletes their data; after SIGKILL (the freezer cgroup still FROZEN, servers
and the caller orphaned) the clean-up a new run starts with (repro.harness.cleanup.reap:
the freezer first, then runner processes, then databases) removes every one of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from repro.harness import cleanup
from repro.harness import procs as _process
from repro.harness.faults.pause import FREEZER_ROOT
from tests.leftovers import leftovers

pytestmark = [pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


# incident -> (its table with a minute-long freeze, the label of its freezer cgroup)
LONG = {
    "blackhole_replica": (f'caller = "{ROOT}/fixtures/blackhole_replica/prefix.py"\n'
                          "freeze_s = 60.0\nbaseline_s = 1.0\nafter_s = 6.0\n", "replica1"),
    "backlog_drain": (f'resolution = "{ROOT}/fixtures/backlog_drain/prefix.py"\n'
                      "freeze_s = 60.0\nbaseline_s = 3.0\n", "replicas"),
}


def _frozen_run(tmp_path: Path, incident: str = "blackhole_replica"
                ) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """A pre-fix run of `incident`, its replicas frozen for a minute: (process, its
    scratch dir, its freezer cgroup)."""
    table, label = LONG[incident]
    cfg = tmp_path / "long.toml"
    cfg.write_text(f"[{incident}]\n{table}")
    log = tmp_path / "child.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", str(ROOT / "repro" / incident),
             "-k", "under_test", "--repro-config", str(cfg),
             "--repro-reports", str(tmp_path / "reports")],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def frozen() -> tuple[Path, Path] | None:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        for owner in Path("/tmp").glob("repro-*/owner.pid"):
            if owner.read_text().split()[0] == str(proc.pid):
                cgroup = FREEZER_ROOT / f"{owner.parent.name}-{label}"
                state = cgroup / "freezer.state"
                if state.exists() and state.read_text().strip() == "FROZEN":
                    return owner.parent, cgroup
        return None

    try:
        scratch, cgroup = _process.wait_for(frozen, timeout=120, interval=0.2,
                                            what="replica1 frozen")
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc, scratch, cgroup


def _short(scratch: Path) -> str:
    return scratch.name.rsplit("-", 1)[-1]


@pytest.mark.parametrize("incident", sorted(LONG))
def test_ctrl_c_while_frozen_leaves_nothing(tmp_path: Path, incident: str) -> None:
    proc, scratch, cgroup = _frozen_run(tmp_path, incident)
    os.kill(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    assert leftovers(_short(scratch)) == []
    assert not cgroup.exists() and not scratch.exists()


@pytest.mark.parametrize("incident", sorted(LONG))
def test_after_sigkill_cleanup_thaws_and_removes_everything(tmp_path: Path, incident: str
                                                            ) -> None:
    proc, scratch, cgroup = _frozen_run(tmp_path, incident)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and nothing else of its: its own group
    proc.wait(timeout=30)
    left = leftovers(_short(scratch))
    assert any("freezer cgroup" in x for x in left), left
    assert any("postgres" in x for x in left), left
    out = "\n".join(cleanup.reap(all_runs=False))
    assert f"freezer cgroup {cgroup.name}" in out, out
    if incident == "blackhole_replica":
        assert "caller pid" in out, out  # (a resolution check lives a second at most)
    assert leftovers(_short(scratch)) == [], out
