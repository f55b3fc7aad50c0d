"""The cut: one target's connection from the build host reset once it has carried N bytes.

Model: an nftables table `repro-<short>-cut` in the target's own network namespace, armed
before the restore starts. Every packet the build host sends to the target's sshd is
counted (`seen`); the one that takes the count past `after_bytes` (an nft `quota over`)
puts the build host's address into the set `cutoff`, and from then on every packet between
the two on the ssh port is answered with a TCP reset, both ways (a reset itself passes):
the build host's ssh client sees "connection reset" at once, and the target's sshd gets the
reset its own next packet draws, so its session dies and `tar` there reads a truncated
archive; a new connection is refused. The kernel does it at the byte, not a poll of the
counters: the cut lands mid-stream by construction, if the stream ever gets that far. It stays until
heal, so a retry of the step cannot get through either: the target cannot be restored.

Measured (`measure()`, recorded by the scenario as fault.measure): whether it fired, the
bytes seen, the resets sent. A cut that never fired did not take effect (the stream to that
target never reached `after_bytes`). Heal deletes the table (idempotent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from repro.harness.faults.base import Applied
from repro.harness.hosts.base import Host
from repro.harness.run import Run

CMD_TIMEOUT_S = 30.0
SSH_PORT = 22
RESET = "reject with tcp reset"
# The resets the kernel sends go out (and, to the target's own sshd, come in) through these
# same chains: a reset must pass, or the one meant for the peer is itself rejected.
NO_RST = "tcp flags & rst == 0"


@dataclass(frozen=True)
class CutState:
    fired: bool
    seen_bytes: int
    resets: int


@dataclass
class CutMidStream:
    run: Run
    target: Host
    build_address: str
    after_bytes: int
    name: str = "cut"
    _installed: bool = field(default=False, init=False)

    @property
    def target_name(self) -> str:
        return self.target.name

    @property
    def table(self) -> str:
        return self.run.name("cut")

    def inject(self) -> Applied:
        b, port = self.build_address, SSH_PORT
        rules = (
            f"table inet {self.table} {{\n"
            "  counter seen {}\n  counter resets {}\n"
            "  set cutoff { type ipv4_addr; flags dynamic; }\n"
            "  chain ingress {\n    type filter hook input priority -10; policy accept;\n"
            f"    ip saddr @cutoff tcp dport {port} {NO_RST} counter name resets {RESET}\n"
            f"    ip saddr {b} tcp dport {port} counter name seen\n"
            f"    ip saddr {b} tcp dport {port} {NO_RST} quota over {self.after_bytes} bytes "
            f"add @cutoff {{ ip saddr }} counter name resets {RESET}\n  }}\n"
            "  chain egress {\n    type filter hook output priority -10; policy accept;\n"
            f"    ip daddr @cutoff tcp sport {port} {NO_RST} {RESET}\n  }}\n}}\n")
        self._installed = True
        res = self.target.run("nft -f -", stdin=rules.encode(), timeout=CMD_TIMEOUT_S,
                              check=False)
        applied = Applied(self.name, self.target.name,
                          {"after_bytes": self.after_bytes, "from": b, "table": self.table})
        if not res.ok:
            applied.shortfall = f"the cut could not be armed: {(res.stdout + res.stderr)[-200:]}"
        return applied

    def measure(self) -> CutState:
        res = self.target.run(f"nft -j list table inet {self.table}", timeout=CMD_TIMEOUT_S,
                              check=False)
        if not res.ok:
            return CutState(False, 0, 0)
        counters: dict[str, int] = {}
        fired = False
        for item in json.loads(res.stdout).get("nftables", []):
            if "counter" in item:
                counters[item["counter"]["name"]] = int(item["counter"]["bytes"]
                                                        if item["counter"]["name"] == "seen"
                                                        else item["counter"]["packets"])
            if "set" in item and item["set"].get("name") == "cutoff":
                fired = bool(item["set"].get("elem"))
        return CutState(fired, counters.get("seen", 0), counters.get("resets", 0))

    def heal(self) -> None:
        if not self._installed:
            return
        self.target.run(f"nft delete table inet {self.table} 2>/dev/null; true",
                        timeout=CMD_TIMEOUT_S, check=False)
        self._installed = False
