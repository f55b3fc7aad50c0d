"""QEMU backend against real guests: commands, files, peers, a real panic seen from
outside (console at once, heartbeat within 3 intervals, new boot id), netem measured,
boot watchdog, and nothing left behind, also after SIGKILL + `repro cleanup`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from repro.harness.errors import ProvisionError
from repro.harness.faults.base import injected
from repro.harness.faults.netem import Netem
from repro.harness.faults.sysrq_crash import SysrqCrash
from repro.harness.history import History
from repro.harness.hosts.qemu import QemuProvider, VmSpec
from repro.harness.hosts.qemu.image import find_image
from repro.harness.probes.heartbeat import Heartbeat
from repro.harness.probes.kernel_log import KernelLogWatcher
from repro.harness.run import Run, start_run
from tests.leftovers import leftovers

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _needs_qemu_and_image() -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("missing prerequisite: qemu-system-x86_64 is not installed "
                    "(fix: bash setup/setup.sh)", pytrace=False)
    find_image()  # a missing image is a failed prerequisite, not a skip


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    r = start_run(tmp_path / "reports")
    yield r
    r.close()


def qemu_leftovers(short: str) -> list[str]:
    found = [x for x in leftovers(short) if not x.startswith("scratch")]
    disks = Path(f"/tmp/repro-{short}/qemu")
    return found + [f"disk {p}" for p in disks.glob("*.qcow2")] if disks.exists() else found


def test_vms_boot_run_commands_move_files_and_reach_each_other(run: Run, tmp_path: Path):
    with QemuProvider(VmSpec(disks_mb=(64,))).hosts(run, ["a", "b"]) as hosts:
        a, b = hosts["a"], hosts["b"]
        assert a.url() == f"qemu://repro-{run.short}-a"
        r = a.run("uname -r; lsblk -dn -o NAME,SIZE /dev/vdb; echo \"$X\"", timeout=20,
                  env={"X": "two words"})
        assert r.stdout.split("\n")[0].endswith("-cloud-amd64")
        assert "vdb" in r.stdout and "64M" in r.stdout and "two words" in r.stdout
        a.put(b"payload\n", "/tmp/repro-t/file", 0o600)
        assert a.run("stat -c %a /tmp/repro-t/file", timeout=10).stdout.strip() == "600"
        a.get("/tmp/repro-t/file", tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == b"payload\n"
        assert a.run("cat", timeout=10, stdin=b"through stdin").stdout == "through stdin"
        slow = a.run("sleep 30", timeout=1, check=False)
        assert slow.exit_code is None and slow.duration_s < 10
        peer = a.run(f"ssh root@{b.address} hostname", timeout=60, check=False)
        assert peer.stdout.strip() == "b", peer.stderr
        console = a.console()
        assert console is not None and b"repro-guest: ready host=a" in console.read_bytes()
        assert console.read_bytes().startswith(b"[    0.000000] Linux version") or \
            b"Linux version" in console.read_bytes()[:2000]
        assert subprocess.run(["pgrep", "-f", f"qemu-system.*repro-{run.short}-a"],
                              capture_output=True, timeout=10).returncode == 0
    assert qemu_leftovers(run.short) == []


def test_real_panic_is_seen_by_the_console_at_once_and_by_the_heartbeat(run: Run):
    interval = 0.5
    history = History()
    with QemuProvider().hosts(run, ["victim"]) as hosts:
        host = hosts["victim"]
        watcher = KernelLogWatcher(history, host)
        heartbeat = Heartbeat(history, host.name, host.address, run.key.private_path,
                              interval_s=interval)
        with watcher, heartbeat:
            deadline = time.monotonic() + 30
            while not any(e.kind == "probe" and e.get("boot_id") for e in history.events()):
                assert time.monotonic() < deadline, "no heartbeat with a boot id"
                time.sleep(0.1)  # condition poll
            crash = SysrqCrash(host)
            fired = history.now()
            with injected(crash, history) as applied:
                assert applied.effective, applied.shortfall
                assert crash.wait_back(90), "the guest did not come back after its panic"
            deadline = time.monotonic() + 60
            while len({e.get("boot_id") for e in history.events()
                       if e.kind == "probe" and e.get("boot_id")}) < 2:
                assert time.monotonic() < deadline, "the heartbeat never saw a new boot id"
                time.sleep(0.1)  # condition poll
    events = history.events()
    panic = next(e for e in events if e.kind == "kernel" and e.get("pattern") == "panic")
    assert panic.t - fired < 3.0, "the console watcher saw the panic late"
    miss = next(e for e in events if e.kind == "probe" and e.get("leg") == "tcp"
                and e.t >= panic.t and not e.get("ok"))
    assert miss.t - panic.t <= 3 * interval + 0.25, (
        f"heartbeat noticed the dead host {miss.t - panic.t:.2f} s after the panic")
    assert any(e.kind == "host" and e.get("event") == "boot" for e in events)
    assert any(e.kind == "host" and e.get("event") in ("panicked", "reset") for e in events)
    assert qemu_leftovers(run.short) == []


def test_netem_loss_and_delay_take_effect_and_heal(run: Run):
    with QemuProvider().hosts(run, ["shaped"]) as hosts:
        host = hosts["shaped"]
        fault = Netem(host, loss_pct=20, delay_ms=40, count=500)
        with injected(fault, History()) as applied:
            assert applied.effective, (applied.shortfall, applied.measured)
            assert 12 <= applied.measured["loss_pct"] <= 28
            assert applied.measured["rtt_median_ms"] >= 35
        healed = fault.measure()
        assert healed["loss_pct"] <= 2 and healed["rtt_median_ms"] < 35
        assert "netem" not in host.run("tc qdisc show dev eth0", timeout=10).stdout


def test_a_vm_that_never_gets_ready_is_retried_once_then_removed(run: Run):
    spec = VmSpec(boot_timeout_s=0.3, attempts=2)
    with pytest.raises(ProvisionError, match="not ready after 2 boot attempts"), \
            QemuProvider(spec).hosts(run, ["hung"]):
        pass
    console = run.reports / "hosts" / f"repro-{run.short}-hung.console.log"
    assert b"boot attempt 1 failed" in console.read_bytes()
    assert qemu_leftovers(run.short) == []


HOLDER = """
import sys, time
from pathlib import Path
from repro.harness.hosts.qemu import QemuProvider, VmSpec
from repro.harness.run import start_run
run = start_run(Path(sys.argv[1]))
with QemuProvider(VmSpec(disks_mb=(32,))).hosts(run, ["held"]):
    print(run.short, flush=True)
    time.sleep(600)
"""


def test_after_sigkill_repro_cleanup_removes_vms_taps_and_disks(tmp_path: Path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "reports")], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        short = proc.stdout.readline().strip()  # printed once the VM is ready
        assert short, "the holder never got its VM ready"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        left = qemu_leftovers(short)
        assert any(x.startswith("qemu") for x in left), left
        assert any(x.startswith("interface rp") for x in left), left
        out = subprocess.run([str(ROOT / ".venv" / "bin" / "repro"), "cleanup"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        assert f"repro-{short}-held" in out
        assert qemu_leftovers(short) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
