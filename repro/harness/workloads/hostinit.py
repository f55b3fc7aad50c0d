"""A host init script (the configuration under test of a machine's system init), applied.

Model: the script is copied to every host of the run and run there as root, once the host
is up, in the order given; each run is one `host` event=init in the history (exit code and
the tail of its output). The first host on which it fails stops the rest: a host whose init
failed is not the machine under test. Used by mtu_wedge (its `host_init` key) and by every
incident whose table takes a `host_init` "as in mtu_wedge" (cache_restore).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from repro.harness.history import History
from repro.harness.hosts.base import Host

REMOTE_PATH = "/tmp/repro-host-init.sh"
INIT_TIMEOUT_S = 60.0


def apply_host_init(hosts: Iterable[Host], script: Path, history: History,
                    timeout: float = INIT_TIMEOUT_S) -> str:
    """Run `script` as root on each host; "" when it succeeded everywhere, else one line
    saying where it failed and how."""
    body = script.read_bytes()
    for host in hosts:
        host.put(body, REMOTE_PATH, 0o755)
        res = host.run(f"sh {REMOTE_PATH}", timeout=timeout, check=False)
        history.append("host", host.name, event="init", exit_code=res.exit_code,
                       output=(res.stdout + res.stderr)[-500:])
        if not res.ok:
            return (f"host_init {script.name} failed on {host.name} "
                    f"(exit {res.exit_code}): {(res.stdout + res.stderr).strip()[-200:]}")
    return ""
