"""The kernel_panic run: provision the build volume, fill it concurrently, observe, judge.

One VM (QEMU, its own Debian cloud kernel, `panic=1` so it reboots by itself
as the postmortem's servers did) with one empty extra disk. Observers run on
the runner for the whole run: the kernel-log watcher on the serial console
(and QEMU's own events) and the boot-id heartbeat. Each round:

1. wipe the disk (unmount WORKSPACE, remove the volume group on it);
2. run `volume_setup` as root with DISK and WORKSPACE (the configuration under
   test) and check that WORKSPACE is a mounted filesystem;
3. record the volume state (dmsetup table and status: snapshot COW usage);
4. fill WORKSPACE with `fillers` concurrent writers to `fill_to` (disk_fill
   fault), polling the fill level;
5. unmount and `e2fsck -fn` the workspace device.

A round in which the host dies (check.loss_evidence: a reboot, a panic or Oops
on the console, heartbeat misses) or the fill's polls went unanswered ends the
loop: the harness then waits for the guest to come back (bounded), so the
heartbeat sees the new boot id, and, if the host really went down, runs
`e2fsck -fn` on the volume once more. Unanswered polls alone are not a death
(the checker needs the evidence too): a host that never went down is not
fsck'ed under writers that may still be running. The verdict is
check.check(history).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from repro.harness.checks import Outcome, Verdict, run_checker
from repro.harness.envelope import envelope, one_guest
from repro.harness.faults.base import injected, record_measure
from repro.harness.faults.disk_fill import DiskFill
from repro.harness.history import History
from repro.harness.hosts.qemu import QemuHost, VmSpec
from repro.harness.probes.heartbeat import Heartbeat
from repro.harness.probes.kernel_log import KernelLogWatcher
from repro.harness.report.results import IncidentResult
from repro.harness.run import Run
from repro.kernel_panic import check
from repro.kernel_panic.config import KernelPanicConfig

INCIDENT = "kernel_panic"
DISK = "/dev/vdb"
WORKSPACE = "/srv/repro-workspace"
SETUP_PATH = "/root/repro-volume-setup.sh"
SETUP_TIMEOUT_S = 180.0
FSCK_TIMEOUT_S = 180.0
CMD_TIMEOUT_S = 60.0
BASELINE_SAMPLES = 3
BASELINE_TIMEOUT_S = 30.0
COME_BACK_S = 90.0
FILL_TIMEOUT_S = 300.0

WIPE = f"""umount -l {WORKSPACE} 2>/dev/null
for vg in $(pvs --noheadings -o vg_name {DISK} 2>/dev/null); do vgremove -ff -y "$vg"; done
pvremove -ff -y {DISK} 2>/dev/null
wipefs -a -q {DISK}; true"""
STATE = f"""src=$(findmnt -n -o SOURCE {WORKSPACE}) || exit 3
echo "device $src"; echo "fstype $(findmnt -n -o FSTYPE {WORKSPACE})"
echo "options $(findmnt -n -o OPTIONS {WORKSPACE})"
dmsetup table 2>/dev/null | sed 's/^/table /'
dmsetup status 2>/dev/null | sed 's/^/status /'; true"""


def role_for(label: str) -> str:
    return "kp-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:16]


def run(run_ctx: Run, cfg: KernelPanicConfig, label: str, expect: Outcome = Outcome.PASS
        ) -> IncidentResult:
    role = role_for(label)
    params = check.Params(host=run_ctx.name(role), fill_to=cfg.fill_to, rounds=cfg.rounds)
    with envelope(run_ctx, INCIDENT, label, cfg.volume_setup, "qemu", expect) as env, \
            one_guest(env, run_ctx, role, VmSpec(disks_mb=(cfg.disk_mb,))) as host:
        return env.result(_observe(run_ctx, cfg, host, env.history, params))


def _observe(run_ctx: Run, cfg: KernelPanicConfig, host: QemuHost, history: History,
             params: check.Params) -> Verdict:
    watcher = KernelLogWatcher(history, host)
    heartbeat = Heartbeat(history, host.name, host.address, run_ctx.key.private_path,
                          interval_s=cfg.heartbeat_interval_s)
    with watcher, heartbeat:
        if not _wait_for(lambda: _healthy(history, host.name) >= BASELINE_SAMPLES,
                         BASELINE_TIMEOUT_S):
            return Verdict(Outcome.INCONCLUSIVE,
                           (f"no healthy heartbeat from {host.name} before the fill",), {})
        device, lost = "", False
        for rnd in range(1, cfg.rounds + 1):
            device, lost = _round(host, cfg, history, rnd, params)
            if lost or not device or _kernel_findings(history, host.name) or \
                    check.loss_evidence(history.events(), params):
                break
        if lost or check.loss_evidence(history.events(), params):
            _after_loss(host, history, device, params)
        time.sleep(2 * cfg.heartbeat_interval_s)  # a last observation window, not a sync
    return run_checker(check.check, history.events(), params)


def _after_loss(host: QemuHost, history: History, device: str, params: check.Params) -> None:
    """Wait (bounded) for a new boot id; e2fsck the volume if the host really went down."""
    back = _wait_for(lambda: _back_on_new_boot(history, host.name), COME_BACK_S)
    evidence = check.loss_evidence(history.events(), params)
    if device and (back or evidence):
        _fsck(host, history, device, "after", activate=True)
    elif device:
        history.append("observe", host.name, what="no fsck after the fill",
                       reason="the fill's polls went unanswered but the host did not go down "
                              "(no reboot, panic or heartbeat misses)")


def _round(host: QemuHost, cfg: KernelPanicConfig, history: History, rnd: int,
           params: check.Params) -> tuple[str, bool]:
    """One provision + fill + fsck cycle: (workspace device or '', host lost)."""
    host.run(WIPE, timeout=CMD_TIMEOUT_S, check=False)
    host.put(Path(cfg.volume_setup).read_bytes(), SETUP_PATH, 0o755)
    res = host.run(f"mkdir -p {WORKSPACE} && sh {SETUP_PATH}", timeout=SETUP_TIMEOUT_S,
                   check=False, env={"DISK": DISK, "WORKSPACE": WORKSPACE})
    history.append("op", host.name, name="volume_setup", round=rnd, ok=res.ok,
                   exit_code=res.exit_code, detail=(res.stdout + res.stderr)[-600:])
    if not res.ok:
        return "", res.exit_code is None
    state = host.run(STATE, timeout=CMD_TIMEOUT_S, check=False)
    fields = _parse_state(state.stdout)
    mounted = state.ok and bool(fields.get("device"))
    history.append("op", host.name, name="workspace", round=rnd, ok=mounted,
                   detail="" if mounted else f"findmnt {WORKSPACE}: nothing mounted",
                   **fields)
    if not mounted:
        return "", False
    fill = DiskFill(host, WORKSPACE, cfg.fillers, cfg.fill_to, FILL_TIMEOUT_S, history)
    with injected(fill, history):
        m = fill.wait(host_dead=lambda: bool(check.loss_evidence(history.events(), params)))
        record_measure(history, fill.name, host.name, round=rnd,
                       fraction=m.fraction, bytes_used=m.bytes_used, ends=m.ends,
                       errors=m.errors, host_lost=m.host_lost, failed_polls=m.failed_polls,
                       seconds=m.seconds, shortfall=DiskFill.shortfall(m, cfg.fill_to))
        if not m.host_lost:
            after = host.run(STATE, timeout=CMD_TIMEOUT_S, check=False)
            history.append("observe", host.name, round=rnd, what="volume after fill",
                           **_parse_state(after.stdout))
    device = str(fields["device"])
    if not m.host_lost:
        _fsck(host, history, device, rnd,
              abandon=lambda: bool(check.loss_evidence(history.events(), params)))
    return device, m.host_lost


def _fsck(host: QemuHost, history: History, device: str, rnd: int | str,
          activate: bool = False, abandon: Callable[[], bool] = lambda: False) -> None:
    """`e2fsck -n` the workspace; given up on (exit code None, as a timeout) as soon as
    `abandon()` holds: an fsck in flight when the kernel panics would otherwise wait out
    its whole timeout (180 s) on a dead guest."""
    prep = "vgchange -ay >/dev/null 2>&1; " if activate else ""
    command = f"{prep}umount {WORKSPACE} 2>/dev/null; e2fsck -fn {device}"
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsck")
    future = pool.submit(host.run, command, timeout=FSCK_TIMEOUT_S, check=False)
    pool.shutdown(wait=False)
    _wait_for(lambda: future.done() or abandon(), FSCK_TIMEOUT_S + 10)
    if not future.done():
        history.append("op", host.name, name="fsck", round=rnd, device=device, ok=False,
                       exit_code=None, detail="abandoned: the host went down under it")
        return
    res = future.result()
    history.append("op", host.name, name="fsck", round=rnd, device=device, ok=res.ok,
                   exit_code=res.exit_code, detail=(res.stdout + res.stderr)[-600:])


def _parse_state(text: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    tables: list[str] = []
    status: list[str] = []
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key in ("device", "fstype", "options"):
            fields[key] = value.strip()
        elif key == "table":
            tables.append(value)
        elif key == "status":
            status.append(value)
    return fields | {"tables": tables, "status": status}


def _healthy(history: History, host: str) -> int:
    return sum(1 for e in history.events() if e.kind == "probe" and e.host == host and e.get("ok"))


def _kernel_findings(history: History, host: str) -> bool:
    return any(e.kind == "kernel" and e.host == host for e in history.events())


def _back_on_new_boot(history: History, host: str) -> bool:
    boots = [e.get("boot_id") for e in history.events()
             if e.kind == "probe" and e.host == host and e.get("ok") and e.get("boot_id")]
    return len(set(boots)) >= 2


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)  # condition poll
    return False
