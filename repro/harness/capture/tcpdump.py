"""tcpdump on one host for a window of time; the pcap ends up in the report directory.

Model: `Capture(host, run, peer, out)` is a context manager. Entering starts
`tcpdump -i <iface toward peer> -s 128 -U --immediate-mode -w
/tmp/repro-<short>-cap-<label>.pcap 'tcp and host <peer>'` (immediate mode: without it
TPACKET_V3 holds packets in its ring until a block fills or times out, and
the window's last packets never reach the file) detached on the host and waits until tcpdump says it
is listening (a capture that starts late misses the window's first
segments). Leaving stops it with SIGTERM (tcpdump then flushes and prints its
counters), waits for it to exit, copies the pcap to `out` and removes it from
the host. `result` tells how many packets were captured and how many the
kernel dropped before tcpdump saw them (then the analysis is incomplete).

Where the packets are seen: the packet tap sits before the nftables
prerouting hook, so with the nft loss fault (drops on this host's ingress) the
capture shows every segment the peer sent, also those this host then
dropped: the sender's whole retransmission schedule. With netem on the
peer's egress, it shows what survived the loss.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from repro.harness.errors import HostCommandError, ReproError
from repro.harness.faults.link import route_iface
from repro.harness.hosts.base import Host
from repro.harness.run import Run

SNAPLEN = 128   # Ethernet + IP + TCP with options fit; payload is not needed
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
CMD_TIMEOUT_S = 60.0  # generous: a TCG guest on a busy machine stalls for tens of seconds


class CaptureError(ReproError):
    """tcpdump could not start, or its capture could not be collected."""


@dataclass(frozen=True)
class CaptureResult:
    pcap: Path
    captured: int
    dropped_by_kernel: int
    host: str
    iface: str

    @property
    def complete(self) -> bool:
        return self.dropped_by_kernel == 0


class Capture:
    def __init__(self, host: Host, run: Run, peer: str, out: Path, label: str = "cap"):
        self.host = host
        self.peer = peer
        self.out = out
        self.remote = f"/tmp/{run.name('cap', label)}.pcap"
        self.log = f"/tmp/{run.name('cap', label)}.log"
        self.pid: int | None = None
        self.iface = ""
        self.result: CaptureResult | None = None

    def __enter__(self) -> Capture:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        self.iface = route_iface(self.host, self.peer)
        res = self.host.run(
            f"rm -f {self.remote} {self.log}; setsid tcpdump -i {self.iface} -n -s {SNAPLEN}"
            f" -U --immediate-mode -w {self.remote} 'tcp and host {self.peer}'"
            f" > {self.log} 2>&1 < /dev/null & echo $!", timeout=CMD_TIMEOUT_S)
        self.pid = int(res.stdout.strip().splitlines()[-1])
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            log = self.host.run(f"cat {self.log}; kill -0 {self.pid} && echo repro-alive",
                                timeout=CMD_TIMEOUT_S, check=False).stdout
            if "listening on" in log:
                return
            if "repro-alive" not in log or time.monotonic() > deadline:
                self.stop()
                raise CaptureError(f"{self.host.name}: tcpdump did not start listening: "
                                 f"{log.strip()[-300:]}")
            time.sleep(0.05)  # condition poll

    def stop(self) -> CaptureResult | None:
        """Idempotent: stop tcpdump, fetch the pcap, remove the host's copies."""
        if self.pid is None:
            return self.result
        pid, self.pid = self.pid, None
        try:
            self.host.run(f"kill -TERM {pid} 2>/dev/null; "
                          f"for i in $(seq {int(STOP_TIMEOUT_S * 20)}); do "
                          f"kill -0 {pid} 2>/dev/null || break; sleep 0.05; done; "
                          f"kill -KILL {pid} 2>/dev/null; true",
                          timeout=STOP_TIMEOUT_S + CMD_TIMEOUT_S, check=False)
            log = self.host.run(f"cat {self.log}", timeout=CMD_TIMEOUT_S, check=False).stdout
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.host.get(self.remote, self.out)
        except HostCommandError as exc:
            raise CaptureError(f"{self.host.name}: could not collect the capture: {exc}") from exc
        finally:
            self.host.run(f"rm -f {self.remote} {self.log}", timeout=CMD_TIMEOUT_S, check=False)
        self.result = CaptureResult(self.out, _count(log, "captured"),
                                    _count(log, "dropped by kernel"), self.host.name, self.iface)
        return self.result


def _count(log: str, what: str) -> int:
    m = re.search(rf"(\d+) packets? {what}", log)
    return int(m.group(1)) if m else 0
