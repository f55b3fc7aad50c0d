"""What a network fault may touch on a host, and the tools the network faults share.

Model: a network fault impairs the *path between hosts of the run*. On each
host it works only on the interface that routes to the run's other hosts
(`route_iface`: inside a container's own network namespace that is its eth0,
inside a VM its NIC, both created by the harness); never on `lo`, never on
the runner's own interfaces (every command runs on the run's hosts), and it
scopes every rule to the peers' addresses so the control channel (docker
exec, or ssh from the runner to a VM) stays unimpaired.

- `Offloads` turns segmentation/receive offloads off on that interface and
  restores them on heal: with GSO/TSO/GRO on, a drop rule sees super-packets
  of up to ~44 segments and "20 % loss" barely slows TCP (DESIGN.md, Physics).
- `netem_support` asks the kernel: try a netem qdisc on the interface and
  remove it at once; when the kernel has none the answer is a precise reason
  (from /proc/config.gz where the kernel publishes its configuration).
- `PeerQdiscs` hangs one child qdisc per peer (netem, tbf) under an HTB root
  whose unclassified traffic goes out unshaped (`default 0`), with a u32
  filter per peer address, and reads each child's counters back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from repro.harness.errors import FaultError, HostCommandError, PrerequisiteError
from repro.harness.hosts.base import Host

CMD_TIMEOUT_S = 60.0  # generous: a TCG guest on a busy machine stalls for tens of seconds
OFFLOADS = {"tso": "tcp-segmentation-offload", "gso": "generic-segmentation-offload",
            "gro": "generic-receive-offload"}
ROOT_HANDLE = 0x5250  # "RP": the harness's HTB root; children are ROOT_HANDLE + 1 + i


class NetemUnavailable(PrerequisiteError):
    """The host's kernel has no netem qdisc: delay, jitter and bursty loss cannot run there."""

    def __init__(self, host: str, reason: str):
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: no netem qdisc in this kernel ({reason})",
                         'run it on hosts with netem: provider = "qemu" (Debian\'s cloud '
                         "kernel has it)")


def route_iface(host: Host, peer: str) -> str:
    """The interface `host` uses to reach `peer`; refuses anything but a routed NIC."""
    out = host.run(f"ip -o route get {peer}", timeout=CMD_TIMEOUT_S).stdout
    m = re.search(r"\bdev (\S+)", out)
    if not m:
        raise FaultError(f"{host.name}: no route to {peer}: {out.strip()}")
    iface = m.group(1)
    if iface == "lo":
        raise FaultError(f"{host.name}: {peer} is local; a network fault needs two hosts")
    return iface


@dataclass
class Offloads:
    """Segmentation and receive offloads of one interface: off during a fault, then restored."""

    host: Host
    iface: str
    saved: dict[str, bool] = field(default_factory=dict)

    def read(self) -> dict[str, bool]:
        out = self.host.run(f"ethtool -k {self.iface}", timeout=CMD_TIMEOUT_S).stdout
        state = {}
        for short, long in OFFLOADS.items():
            m = re.search(rf"^{long}: (on|off)", out, re.M)
            if m:
                state[short] = m.group(1) == "on"
        return state

    def disable(self) -> dict[str, bool]:
        """Turn them off; returns the state read back afterwards (all False when it worked)."""
        if not self.saved:
            self.saved = self.read()
        on = [k for k, v in self.saved.items() if v]
        if on:
            self.host.run(f"ethtool -K {self.iface} " + " ".join(f"{k} off" for k in on),
                          timeout=CMD_TIMEOUT_S, check=False)
        return self.read()

    def restore(self) -> None:
        on = [k for k, v in self.saved.items() if v]
        if on:
            self.host.run(f"ethtool -K {self.iface} " + " ".join(f"{k} on" for k in on),
                          timeout=CMD_TIMEOUT_S, check=False)
        self.saved = {}


def netem_support(host: Host, iface: str) -> str:
    """"" when the kernel of `host` has netem, else the precise reason it has not."""
    probe = (f"if tc qdisc add dev {iface} root handle 7ffe: netem 2>/tmp/repro-netem.err; then "
             f"tc qdisc del dev {iface} root handle 7ffe:; echo netem-ok; else "
             "cat /tmp/repro-netem.err; fi; rm -f /tmp/repro-netem.err; "
             "echo kernel $(uname -r); "
             "(zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r) 2>/dev/null) "
             "| grep -E '(CONFIG_NET_SCH_NETEM[ =])' || true")
    out = host.run(probe, timeout=CMD_TIMEOUT_S).stdout
    if "netem-ok" in out:
        return ""
    kernel = re.search(r"^kernel (\S+)", out, re.M)
    config = re.search(r"^(# )?CONFIG_NET_SCH_NETEM.*$", out, re.M)
    tc_err = out.splitlines()[0].strip() if out.strip() else "tc failed"
    where = f"kernel {kernel.group(1)}" if kernel else "kernel"
    if config:
        return f"{where}: {config.group(0).lstrip('# ').strip()}"
    return f"{where}: tc says {tc_err!r}"


@dataclass
class ChildStats:
    packets: int   # sent on by the child qdisc
    drops: int     # dropped by it (netem loss, queue overflow)
    bytes: int

    @property
    def offered(self) -> int:
        return self.packets + self.drops


@dataclass
class PeerQdiscs:
    """One child qdisc per peer under the harness's HTB root on `iface`."""

    host: Host
    iface: str
    children: dict[str, str]   # peer address -> qdisc spec, e.g. "netem loss 30%"
    installed: bool = False

    def _handle(self, i: int) -> str:
        return f"{ROOT_HANDLE + 1 + i:x}:"

    def install(self) -> None:
        root = f"{ROOT_HANDLE:x}:"
        existing = self.host.run(f"tc qdisc show dev {self.iface} root",
                                 timeout=CMD_TIMEOUT_S).stdout
        if f"qdisc htb {root}" in existing:
            raise FaultError(f"{self.host.name}: {self.iface} already carries a tc fault of this "
                             "run; combine delay, loss and rate in one fault")
        cmds = [f"tc qdisc add dev {self.iface} root handle {root} htb default 0"]
        for i, (peer, spec) in enumerate(self.children.items()):
            cls = f"{ROOT_HANDLE:x}:{i + 1:x}"
            cmds += [f"tc class add dev {self.iface} parent {root} classid {cls} htb rate 10gbit"
                     " ceil 10gbit quantum 60000",
                     f"tc qdisc add dev {self.iface} parent {cls} handle {self._handle(i)} {spec}",
                     f"tc filter add dev {self.iface} parent {root} protocol ip prio 1 u32 "
                     f"match ip dst {peer}/32 flowid {cls}"]
        self.installed = True
        try:
            self.host.run(" && ".join(cmds), timeout=CMD_TIMEOUT_S)
        except HostCommandError as exc:
            self.remove()
            raise FaultError(f"{self.host.name}: tc refused the fault: {exc}") from exc

    def stats(self) -> dict[str, ChildStats]:
        out = self.host.run(f"tc -s -j qdisc show dev {self.iface}", timeout=CMD_TIMEOUT_S).stdout
        by_handle = {q.get("handle"): q for q in json.loads(out or "[]")}
        result = {}
        for i, peer in enumerate(self.children):
            q = by_handle.get(self._handle(i), {})
            result[peer] = ChildStats(int(q.get("packets", 0)), int(q.get("drops", 0)),
                                      int(q.get("bytes", 0)))
        return result

    def remove(self) -> None:
        """Idempotent; removes the root only when it is the harness's own."""
        if not self.installed:
            return
        self.host.run(f"tc qdisc show dev {self.iface} root | grep -q 'htb {ROOT_HANDLE:x}:' && "
                      f"tc qdisc del dev {self.iface} root; true", timeout=CMD_TIMEOUT_S,
                      check=False)
        self.installed = False


def peer_ifaces(host: Host, peers: Mapping[str, object]) -> dict[str, list[str]]:
    """iface -> the peer addresses `host` reaches through it."""
    out: dict[str, list[str]] = {}
    for peer in peers:
        out.setdefault(route_iface(host, peer), []).append(peer)
    return out
