"""Names and labels of everything the harness creates (DESIGN.md, contract "Names").

Model: a run has an id `<UTC time>-<4 hex>`; every object on the machine starts
with PREFIX ("repro"), every network interface with IFACE_PREFIX ("rp", kernel
limit 15 characters), Docker objects carry LABEL_RUN=<run id> and LABEL_PID=<pid
of the run's process> so a later run can tell a dead run's leftovers from a live
run's objects. `repro cleanup` finds objects by these and only these.
"""

from __future__ import annotations

import os
import secrets
import time

PREFIX = "repro"
IFACE_PREFIX = "rp"
LABEL_RUN = "repro.run"
LABEL_PID = "repro.pid"
IFACE_MAX = 15


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def short(run_id: str) -> str:
    """The run id's random tail: enough to keep interface names unique and short."""
    return run_id.rsplit("-", 1)[-1]


def object_name(run_id: str, *parts: str) -> str:
    """Name for a container, network, netns, nft table, temp dir of this run."""
    return "-".join([PREFIX, short(run_id), *parts])


def iface_name(run_id: str, role: str) -> str:
    name = f"{IFACE_PREFIX}{short(run_id)}{role}"
    if len(name) > IFACE_MAX:
        raise ValueError(f"interface name {name!r} is longer than {IFACE_MAX} characters")
    return name


def run_labels(run_id: str) -> dict[str, str]:
    return {LABEL_RUN: run_id, LABEL_PID: str(os.getpid())}
