"""The network of a run's QEMU guests: one bridge, one tap per VM.

Model: the first VM of a run creates the bridge `rp<short>qbr` with the
address .1 of a /24 in 10.213.0.0/16 that no interface on the machine uses
yet; each VM gets a persistent tap `rp<short>t<N>` enslaved to it and the
static address .(10+N), passed on the kernel command line. The runner reaches
guests through the bridge address and guests reach each other through the
bridge: traffic never leaves the machine (no route, no NAT). Only interfaces
named like this are ever created or deleted here; the bridge is reference
counted per run and removed with its last VM.

Docker's br_netfilter makes bridged frames pass the FORWARD chain, whose
policy Docker sets to drop; as Docker does for its own bridges, one rule
`-i BR -o BR -j ACCEPT` (comment `repro-<short>-qemu`) lets guests reach each
other. It goes with the bridge and `reap` removes those of dead runs.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import shutil
import subprocess
import threading
from dataclasses import dataclass

from repro.harness import names
from repro.harness.errors import ProvisionError

CMD_TIMEOUT_S = 20
POOL = ipaddress.ip_network("10.213.0.0/16")
FIRST_GUEST = 10


def ip(*args: str, check: bool = True) -> str:
    try:
        p = subprocess.run(["ip", *args], capture_output=True, text=True,
                           timeout=CMD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ProvisionError(f"`ip {' '.join(args)}` timed out") from exc
    if check and p.returncode != 0:
        raise ProvisionError(f"`ip {' '.join(args)}` failed: {p.stderr.strip()}")
    return p.stdout


def bridge_name(short: str) -> str:
    return f"{names.IFACE_PREFIX}{short}qbr"


def tap_name(short: str, index: int) -> str:
    name = f"{names.IFACE_PREFIX}{short}t{index}"
    if len(name) > names.IFACE_MAX:
        raise ProvisionError(f"interface name {name!r} is longer than {names.IFACE_MAX}")
    return name


def is_ours(ifname: str) -> str | None:
    """The run short id if `ifname` is a QEMU bridge or tap of the harness, else None."""
    m = re.fullmatch(rf"{names.IFACE_PREFIX}([0-9a-f]{{4}})(qbr|t\d{{1,3}})", ifname)
    return m.group(1) if m else None


def iptables(*args: str) -> subprocess.CompletedProcess[str] | None:
    if shutil.which("iptables") is None:
        return None
    try:
        return subprocess.run(["iptables", "-w", "10", *args], capture_output=True, text=True,
                              timeout=CMD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return None


def rule_comment(short: str) -> str:
    return f"{names.PREFIX}-{short}-qemu"


def _forward_rule(bridge: str, short: str) -> list[str]:
    return ["FORWARD", "-i", bridge, "-o", bridge, "-m", "comment", "--comment",
            rule_comment(short), "-j", "ACCEPT"]


def forwarding_rules() -> list[tuple[str, list[str]]]:
    """(run short id, rule spec) of every harness rule in FORWARD."""
    p = iptables("-S", "FORWARD")
    rules = []
    for line in (p.stdout if p else "").splitlines():
        m = re.search(rf'--comment "?{names.PREFIX}-([0-9a-f]{{4}})-qemu"?', line)
        if m and line.startswith("-A "):
            rules.append((m.group(1), shlex.split(line)[1:]))
    return rules


def _used_subnets() -> set[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    used: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
    for line in ip("-o", "-4", "addr", "show").splitlines():
        m = re.search(r"inet (\S+)", line)
        if m:
            used.add(ipaddress.ip_interface(m.group(1)).network)
    for line in ip("-4", "route", "show").splitlines():
        first = line.split()[0] if line.split() else ""
        if "/" in first:
            used.add(ipaddress.ip_network(first, strict=False))
    return used


@dataclass
class RunNetwork:
    short: str
    subnet: ipaddress.IPv4Network
    bridge: str
    users: int = 0
    next_index: int = 0

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    def guest_address(self, index: int) -> str:
        return str(self.subnet.network_address + FIRST_GUEST + index)

    def add_tap(self) -> tuple[str, int]:
        index = self.next_index
        self.next_index += 1
        tap = tap_name(self.short, index)
        ip("tuntap", "add", "dev", tap, "mode", "tap")
        ip("link", "set", tap, "master", self.bridge, "up")
        return tap, index

    @staticmethod
    def remove_tap(tap: str) -> None:
        ip("link", "del", tap, check=False)


_lock = threading.Lock()
_networks: dict[str, RunNetwork] = {}


def acquire(short: str) -> RunNetwork:
    """The run's network, created on first use (bridge + subnet)."""
    with _lock:
        net = _networks.get(short)
        if net is None:
            used = _used_subnets()
            subnet = next((s for s in POOL.subnets(new_prefix=24)
                           if not any(s.overlaps(u) for u in used)), None)
            if subnet is None:
                raise ProvisionError(f"no free /24 left in {POOL} for the run's bridge")
            net = RunNetwork(short, ipaddress.IPv4Network(subnet), bridge_name(short))
            ip("link", "add", net.bridge, "type", "bridge")
            try:
                ip("addr", "add", f"{net.gateway}/{subnet.prefixlen}", "dev", net.bridge)
                ip("link", "set", net.bridge, "up")
                iptables("-I", *_forward_rule(net.bridge, short))
            except ProvisionError:
                ip("link", "del", net.bridge, check=False)
                raise
            _networks[short] = net
        net.users += 1
        return net


def release(net: RunNetwork) -> None:
    with _lock:
        net.users -= 1
        if net.users <= 0:
            iptables("-D", *_forward_rule(net.bridge, net.short))
            ip("link", "del", net.bridge, check=False)
            _networks.pop(net.short, None)
