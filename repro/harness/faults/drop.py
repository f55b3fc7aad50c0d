"""Drop: every packet to and from one loopback TCP port dropped on arrival (the blunt blackhole).

Model: `DropLoopbackPort(run, label, port)` installs the nft table
`repro-<short>-drop-<label>` in the runner's own network namespace: a prerouting
chain (before conntrack) that drops, on `lo` only, TCP packets to or from `port`.
Dropping on arrival means the sender's TCP is never told: connects hang in SYN
retransmission, data already sent is never acknowledged. That is the blunt variant
of an unresponsive server, to compare with a frozen one (faults.pause, whose kernel
still completes handshakes and acknowledges data).

Only loopback traffic to that port is touched (`iif "lo"`): never another address.

Measurement: after installing, a TCP connect to the port must fail within 1 s and the
rule's counter must have counted packets; otherwise the shortfall says so. Heal
deletes the table (idempotent); `repro cleanup` removes tables of dead runs by name
(repro-<short>-..., cleanup._reap_nft).
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from repro.harness.errors import FaultError
from repro.harness.faults.base import Applied
from repro.harness.run import Run

CMD_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 1.0


def tcp_connects(port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """A TCP handshake with 127.0.0.1:`port` completes within `timeout`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _nft(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True,
                              timeout=CMD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FaultError(f"nft {' '.join(args)}: {exc}") from exc


@dataclass
class DropLoopbackPort:
    run: Run
    label: str
    port: int
    clock: Callable[[], float] | None = None  # the history's: fault.start at the drop itself
    name: str = "drop"
    _installed: bool = field(default=False, init=False)

    @property
    def table(self) -> str:
        return self.run.name("drop", self.label)

    @property
    def target_name(self) -> str:
        return self.label

    def inject(self) -> Applied:
        rules = (f"table inet {self.table} {{\n  counter dropped {{}}\n"
                 "  chain ingress {\n"
                 "    type filter hook prerouting priority -300; policy accept;\n"
                 f'    iif "lo" tcp dport {self.port} counter name dropped drop\n'
                 f'    iif "lo" tcp sport {self.port} counter name dropped drop\n'
                 "  }\n}\n")
        began = self.clock() if self.clock else None
        done = _nft(["-f", "-"], rules)
        if done.returncode != 0:
            raise FaultError(f"nft refused the drop table: {done.stderr.strip()[:200]}")
        self._installed = True
        through = tcp_connects(self.port)
        dropped = self.dropped()
        shortfall = ("a TCP connect still got through" if through else
                     "no packet was dropped" if not dropped else "")
        return Applied(self.name, self.label, {"port": self.port, "table": self.table},
                       {"connect_through": through, "dropped": dropped}, shortfall,
                       began_t=began)

    def dropped(self) -> int:
        done = _nft(["-j", "list", "counter", "inet", self.table, "dropped"])
        if done.returncode != 0:
            return 0
        for item in json.loads(done.stdout).get("nftables", []):
            if "counter" in item:
                return int(item["counter"]["packets"])
        return 0

    def heal(self) -> None:
        if self._installed:
            self._installed = False
            _nft(["delete", "table", "inet", self.table])
