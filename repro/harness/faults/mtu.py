"""MTU change on a host's interface, verified with don't-fragment probes.

Model: set the MTU with `ip link`, then prove it from the wire: from the host,
an ICMP echo with DF set and a payload of exactly MTU-28 bytes (20 IP + 8 ICMP)
must reach a peer, and one byte more must be refused. The measured MTU is
recorded; a mismatch is a shortfall (the run is inconclusive).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from repro.harness.faults.base import Applied
from repro.harness.hosts.base import Host

IP_ICMP_HEADERS = 28


@dataclass(frozen=True)
class DfProbe:
    fits: bool      # a DF packet of exactly `mtu` bytes got through
    too_big: bool   # a DF packet of mtu+1 bytes was refused

    @property
    def confirms(self) -> bool:
        return self.fits and self.too_big


def read_mtu(host: Host, iface: str = "eth0") -> int:
    return int(host.run(f"cat /sys/class/net/{iface}/mtu", timeout=5).stdout.strip())


def df_probe(host: Host, peer: str, mtu: int) -> DfProbe:
    """Ping `peer` from `host` with DF at exactly `mtu` bytes and at one byte more."""
    size = mtu - IP_ICMP_HEADERS
    fits = host.run(f"ping -n -c 1 -W 2 -M do -s {size} {peer}", timeout=5, check=False).ok
    over = host.run(f"ping -n -c 1 -W 2 -M do -s {size + 1} {peer}", timeout=5, check=False)
    return DfProbe(fits=fits, too_big=not over.ok)


@dataclass
class MtuFault:
    host: Host
    peer: str  # an address of the run's own hosts to probe against
    mtu: int
    iface: str = "eth0"
    name: str = "mtu"
    _original: int | None = field(default=None, init=False)

    @property
    def target_name(self) -> str:
        return self.host.name

    def inject(self) -> Applied:
        self._original = read_mtu(self.host, self.iface)
        self.host.run(f"ip link set dev {self.iface} mtu {self.mtu}", timeout=5)
        probe = df_probe(self.host, self.peer, self.mtu)
        applied = Applied(self.name, self.host.name,
                          {"iface": self.iface, "mtu": self.mtu, "was": self._original},
                          {"mtu": read_mtu(self.host, self.iface), "df_fits": probe.fits,
                           "df_too_big_refused": probe.too_big})
        if not probe.confirms:
            applied.shortfall = (f"DF probe does not confirm MTU {self.mtu} on {self.host.name}:"
                                 f" {self.mtu}-byte packet {'passed' if probe.fits else 'failed'},"
                                 f" {self.mtu + 1}-byte packet "
                                 f"{'refused' if probe.too_big else 'passed'}")
        return applied

    def heal(self) -> None:
        if self._original is not None:
            self.host.run(f"ip link set dev {self.iface} mtu {self._original}", timeout=5,
                          check=False)
            self._original = None
