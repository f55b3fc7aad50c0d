"""netem on QEMU hosts: loss, delay, jitter, reorder on the guest's own kernel.

Model (after Jepsen's netem shaper): the guest runs Debian's kernel, which has
sch_netem (the runner's kernel has not). `inject()` replaces the root qdisc
of the guest's interface with one netem qdisc (`tc qdisc replace ... root
netem`), then measures what it does: `count` pings from the runner to the
guest (one of the project's own hosts, through the run's bridge), whose
replies leave through the impaired interface. Loss is measured against the
binomial tolerance (3 standard deviations, at least 2 points), delay by the
median RTT; a measurement far from what was asked is a shortfall (the run is
inconclusive). Loss correlation is never passed (broken in netem; see
DESIGN.md). Offloads are turned off so a "packet" is a packet. `heal()`
deletes the qdisc and turns offloads back on; it is idempotent.
"""

from __future__ import annotations

import math
import re
import statistics
import subprocess
from dataclasses import dataclass

from repro.harness.faults.base import Applied
from repro.harness.hosts.base import Host

CMD_TIMEOUT_S = 20.0


@dataclass
class Netem:
    host: Host
    dev: str = "eth0"
    loss_pct: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder_pct: float = 0.0
    count: int = 400  # pings used to measure the effect
    name: str = "netem"

    @property
    def target_name(self) -> str:
        return self.host.name

    def qdisc_args(self) -> list[str]:
        args = ["netem", "limit", "10000"]
        if self.delay_ms or self.jitter_ms or self.reorder_pct:
            args += ["delay", f"{self.delay_ms}ms"]
            if self.jitter_ms:
                args += [f"{self.jitter_ms}ms"]
        if self.reorder_pct:
            args += ["reorder", f"{self.reorder_pct}%"]
        if self.loss_pct:
            args += ["loss", f"{self.loss_pct}%"]
        return args

    def inject(self) -> Applied:
        params = {"dev": self.dev, "loss_pct": self.loss_pct, "delay_ms": self.delay_ms,
                  "jitter_ms": self.jitter_ms, "reorder_pct": self.reorder_pct}
        self.host.run(f"ethtool -K {self.dev} tso off gso off gro off 2>/dev/null; "
                      f"tc qdisc replace dev {self.dev} root {' '.join(self.qdisc_args())}",
                      timeout=CMD_TIMEOUT_S)
        shown = self.host.run(f"tc qdisc show dev {self.dev}", timeout=CMD_TIMEOUT_S).stdout
        measured = self.measure()
        measured["qdisc"] = shown.strip()
        return Applied(self.name, self.host.name, params, measured,
                       self.shortfall(measured, shown))

    def measure(self) -> dict[str, float | int | str]:
        interval = 0.02  # 50 pps: a TCG guest on a loaded machine keeps up
        try:
            p = subprocess.run(["ping", "-n", "-c", str(self.count),
                                "-i", str(interval), "-W", "2", self.host.address],
                               capture_output=True, text=True,
                               timeout=self.count * interval + 30, check=False)
            out = p.stdout
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        rtts = [float(m.group(1)) for line in out.splitlines() if "DUP" not in line
                for m in [re.search(r"time=([\d.]+) ms", line)] if m]
        received = len(rtts)
        return {"sent": self.count, "received": received,
                "loss_pct": round(100.0 * (self.count - received) / self.count, 2),
                "rtt_median_ms": round(statistics.median(rtts), 2) if rtts else -1.0}

    def shortfall(self, m: dict[str, float | int | str], shown: str) -> str:
        if "netem" not in shown:
            return f"no netem qdisc on {self.dev}: {shown.strip()[:120]}"
        n = float(m["sent"])
        p = self.loss_pct / 100.0
        tol = max(2.0, 300.0 * math.sqrt(max(p * (1 - p), 1e-9) / n))
        if abs(float(m["loss_pct"]) - self.loss_pct) > tol:
            return (f"measured loss {m['loss_pct']} % is far from the {self.loss_pct} % asked "
                    f"(tolerance ±{tol:.1f} points over {int(n)} pings)")
        rtt = float(m["rtt_median_ms"])
        if self.delay_ms and (rtt < 0 or rtt < 0.8 * self.delay_ms):
            return f"median RTT {rtt} ms is short of the {self.delay_ms} ms delay asked"
        return ""

    def heal(self) -> None:
        self.host.run(f"tc qdisc del dev {self.dev} root 2>/dev/null; "
                      f"ethtool -K {self.dev} tso on gso on gro on 2>/dev/null; true",
                      timeout=CMD_TIMEOUT_S, check=False)
