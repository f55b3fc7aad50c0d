"""A network partition between two groups of the run's hosts, proven by probes and counters.

Model: every host of side A drops, on ingress, everything from side B's
addresses, and the other way round (a table `repro-<short>-part` in each
host's own network namespace, prerouting before conntrack). Dropping on the
receiver cuts both directions without the sender's TCP being told (a drop
in its own output path would return an error to the socket at once).

Measurement: after injecting, a TCP connect from each side to the other
(to sshd, port 22, which every host runs) must fail within 2 s, and the
drop counters must have counted those packets; otherwise the partition did
not take effect (shortfall). Healing removes the tables and checks that
the same connects succeed again (`restored`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from repro.harness.errors import FaultError
from repro.harness.faults.base import Applied
from repro.harness.faults.link import CMD_TIMEOUT_S
from repro.harness.hosts.base import Host
from repro.harness.run import Run

PROBE_PORT = 22


def tcp_connects(src: Host, dst: str, port: int = PROBE_PORT, wait_s: int = 2) -> bool:
    return src.run(f"nc -z -w {wait_s} {dst} {port}", timeout=wait_s + 5, check=False).ok


@dataclass
class Partition:
    run: Run
    side_a: Sequence[Host]
    side_b: Sequence[Host]
    name: str = "partition"
    restored: bool | None = None
    clock: Callable[[], float] | None = None  # the history's: fault.start when the cut is in
    _installed: list[Host] = field(default_factory=list, init=False)

    @property
    def table(self) -> str:
        return self.run.name("part")

    @property
    def target_name(self) -> str:
        return ",".join(h.name for h in [*self.side_a, *self.side_b])

    def _pairs(self) -> list[tuple[Host, Host]]:
        return [(a, b) for a in self.side_a for b in self.side_b] + \
               [(b, a) for a in self.side_a for b in self.side_b]

    def inject(self) -> Applied:
        if not self.side_a or not self.side_b:
            raise FaultError("a partition needs hosts on both sides")
        for mine, theirs in ((self.side_a, self.side_b), (self.side_b, self.side_a)):
            addrs = ", ".join(h.address for h in theirs)
            for h in mine:
                rules = (f"table inet {self.table} {{\n  counter cut {{}}\n"
                         "  chain ingress {\n"
                         "    type filter hook prerouting priority -300; policy accept;\n"
                         f"    ip saddr {{ {addrs} }} counter name cut drop\n  }}\n}}\n")
                h.put(rules.encode(), f"/tmp/{self.table}.nft", 0o600)
                self._installed.append(h)
                h.run(f"nft -f /tmp/{self.table}.nft; rc=$?; rm -f /tmp/{self.table}.nft; "
                      "exit $rc", timeout=CMD_TIMEOUT_S)
        began = self.clock() if self.clock else None
        leaks = [f"{s.name} -> {d.name}" for (s, d), through in self._connects() if through]
        cut = {h.name: self._count(h) for h in self._installed}
        applied = Applied(self.name, self.target_name,
                          {"side_a": [h.name for h in self.side_a],
                           "side_b": [h.name for h in self.side_b], "table": self.table},
                          {"connects_through": leaks, "dropped": cut}, began_t=began)
        if leaks:
            applied.shortfall = f"TCP connects still got through: {', '.join(leaks)}"
        elif not all(cut.values()):
            idle = [h for h, n in cut.items() if not n]
            applied.shortfall = f"no packet was dropped on {', '.join(idle)}"
        return applied

    def _count(self, h: Host) -> int:
        res = h.run(f"nft -j list counter inet {self.table} cut", timeout=CMD_TIMEOUT_S,
                    check=False)
        if not res.ok:
            return 0
        for item in json.loads(res.stdout).get("nftables", []):
            if "counter" in item:
                return int(item["counter"]["packets"])
        return 0

    def heal(self) -> None:
        """Idempotent: remove the tables, then check the hosts reach each other again."""
        if not self._installed:
            return
        for h in self._installed:
            h.run(f"nft delete table inet {self.table} 2>/dev/null; true",
                  timeout=CMD_TIMEOUT_S, check=False)
        self._installed = []
        self.restored = all(through for _, through in self._connects())

    def _connects(self) -> list[tuple[tuple[Host, Host], bool]]:
        """Each pair's TCP connect, all in parallel (each waits up to 2 s)."""
        pairs = self._pairs()
        with ThreadPoolExecutor(max_workers=min(16, len(pairs))) as pool:
            return list(zip(pairs, pool.map(lambda sd: tcp_connects(sd[0], sd[1].address),
                                            pairs), strict=True))
