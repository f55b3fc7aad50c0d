"""Find and remove everything the harness left on this machine, and only that.

Model: every object carries its run's short id in its name (repro-<short>-...,
rp<short>..., repro_<short>_... for nft tables) or, for Docker, the label
repro.run=<run id>. A run is *live* while the process named in its scratch
dir's owner.pid is alive (the same process: its start time is recorded too,
so a reused pid does not keep a dead run alive). `reap(all_runs=True)`
removes every harness object; `reap(all_runs=False)` (a run's start, and
`repro cleanup` without --all) removes what dead runs left. Backends with
objects of their own (QEMU, PostgreSQL, ...) expose
`reap(all_runs, live_run_ids)`, listed in REAPERS.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import shutil
import subprocess
from collections.abc import Callable

from repro.harness import names
from repro.harness.procs import pid_alive, start_ticks
from repro.harness.run import SCRATCH_ROOT

REAPERS = [
    # first: a frozen task takes no signal (not even SIGKILL) until thawed
    "repro.harness.faults.pause",
    "repro.harness.hosts.docker",
    "repro.harness.hosts.qemu",
    "repro.harness.hosts.ssh",  # existing machines: restores what dead runs left on them (ledger)
    "repro.mongo_index_lock.storm",  # before the databases: their clients die first
    "repro.harness.services.runner",  # callers and checks under test: before the databases too
    "repro.harness.services.databases",
    "repro.harness.services.prometheus",  # runner-side servers (reboot_blindspot)
    "repro.harness.hosts.ec2.janitor",
]
SHORT = r"[0-9a-f]{4}"
CMD_TIMEOUT_S = 20


def live_runs() -> dict[str, str]:
    """short id -> run id of every run whose owner process is alive."""
    live = {}
    for owner in SCRATCH_ROOT.glob(f"{names.PREFIX}-*/owner.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid_text, run_id, *rest = owner.read_text().split()
            pid = int(pid_text)
            same_process = not rest or str(start_ticks(pid)) == rest[0]
            if pid_alive(pid) and same_process:
                live[names.short(run_id)] = run_id
    return live


def _cmd(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=CMD_TIMEOUT_S,
                              check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _reap_interfaces(dead: Callable[[str], bool]) -> list[str]:
    removed = []
    for line in _cmd(["ip", "-o", "link", "show"]).splitlines():
        m = re.match(rf"\d+: ({names.IFACE_PREFIX}({SHORT})\w*)[@:]", line)
        if m and dead(m.group(2)):
            _cmd(["ip", "link", "del", m.group(1)])
            removed.append(f"interface {m.group(1)}")
    return removed


def _reap_netns(dead: Callable[[str], bool]) -> list[str]:
    removed = []
    for line in _cmd(["ip", "netns", "list"]).splitlines():
        ns = line.split()[0] if line.split() else ""
        m = re.match(rf"{names.PREFIX}-({SHORT})", ns)
        if m and dead(m.group(1)):
            _cmd(["ip", "netns", "del", ns])
            removed.append(f"netns {ns}")
    return removed


def _reap_nft(dead: Callable[[str], bool]) -> list[str]:
    removed = []
    for line in _cmd(["nft", "list", "tables"]).splitlines():
        parts = line.split()  # "table inet repro_ab12_loss"
        if len(parts) == 3:
            m = re.match(rf"{names.PREFIX}[_-]({SHORT})", parts[2])
            if m and dead(m.group(1)):
                _cmd(["nft", "delete", "table", parts[1], parts[2]])
                removed.append(f"nft table {parts[1]} {parts[2]}")
    return removed


def _reap_scratch(dead: Callable[[str], bool]) -> list[str]:
    removed = []
    for d in SCRATCH_ROOT.glob(f"{names.PREFIX}-*"):
        m = re.match(rf"{names.PREFIX}-({SHORT})$", d.name)
        if m and d.is_dir() and dead(m.group(1)):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(f"scratch dir {d}")
    return removed


def reap(all_runs: bool) -> list[str]:
    """Liveness is read again before every reaper and every decision: a run that starts
    while a reap is under way (Docker alone takes a second or more) keeps what it has."""

    def dead(short: str) -> bool:
        return all_runs or short not in live_runs()

    removed: list[str] = []
    for module_name in REAPERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # that backend is not part of this checkout
        reaper = getattr(module, "reap", None)
        if reaper:
            removed += reaper(all_runs, set() if all_runs else set(live_runs().values()))
    removed += _reap_netns(dead)
    removed += _reap_interfaces(dead)
    removed += _reap_nft(dead)
    removed += _reap_scratch(dead)
    return removed
