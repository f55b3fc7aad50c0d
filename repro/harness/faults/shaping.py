"""Delay, jitter and bandwidth limits between hosts of the run, measured on the wire.

Model: every host gets, on its interface toward the others, one child qdisc
per peer under the harness's HTB root (repro.harness.faults.link.PeerQdiscs), so only
traffic between the run's hosts is shaped; each direction is shaped on its
sender's egress.

- Delay and jitter need netem (`netem delay D J distribution normal`). A host
  whose kernel has none (this machine's Docker containers) raises
  NetemUnavailable with the kernel's own word for it (CONFIG_NET_SCH_NETEM is
  not set): tests skip with that reason; nothing emulates a delay otherwise.
- A bandwidth limit is tbf (`tbf rate R burst B latency 50ms`), which kernels
  without netem usually still have.

Measurement: before and after injecting, 20 pings each way between every
pair; the added round trip must be twice the delay (both directions are
delayed) within 20 % or 2 ms, and jitter must show as spread. A rate limit is
measured by timing a TCP transfer of about three seconds' worth of data; the
goodput must land between 60 % and 105 % of the rate. A miss is a shortfall.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from repro.harness.errors import FaultError
from repro.harness.faults.base import Applied
from repro.harness.faults.link import (
    CMD_TIMEOUT_S,
    NetemUnavailable,
    PeerQdiscs,
    netem_support,
    route_iface,
)
from repro.harness.hosts.base import Host
from repro.harness.run import Run

PINGS = 20
RATE_PORT = 5299
RATE_SECONDS = 3.0


@dataclass(frozen=True)
class RttSample:
    src: str
    dst: str
    median_ms: float
    stdev_ms: float
    received: int


def ping(src: Host, dst: str, count: int = PINGS) -> RttSample:
    out = src.run(f"ping -n -c {count} -i 0.05 -W 2 {dst}", timeout=count * 2.5 + 5,
                  check=False).stdout
    times = [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]
    if not times:
        return RttSample(src.name, dst, float("nan"), 0.0, 0)
    return RttSample(src.name, dst, statistics.median(times),
                     statistics.pstdev(times), len(times))


@dataclass
class Shaping:
    run: Run
    hosts: Sequence[Host]
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_kbit: int | None = None
    name: str = "shaping"
    _qdiscs: list[PeerQdiscs] = field(default_factory=list, init=False)

    @property
    def target_name(self) -> str:
        return ",".join(h.name for h in self.hosts)

    def _child_spec(self) -> str:
        if self.delay_ms or self.jitter_ms:
            if self.rate_kbit:
                raise FaultError("delay and a rate limit in one fault are not supported; "
                                 "inject them as two runs")
            jitter = f" {self.jitter_ms:g}ms distribution normal" if self.jitter_ms else ""
            return f"netem delay {self.delay_ms:g}ms{jitter} limit 100000"
        if self.rate_kbit:
            burst = max(3000, self.rate_kbit * 1000 // 8 // 100)  # ~10 ms of traffic
            return f"tbf rate {self.rate_kbit}kbit burst {burst} latency 50ms"
        raise FaultError("shaping needs a delay, a jitter or a rate")

    def inject(self) -> Applied:
        if len(self.hosts) < 2:
            raise FaultError("shaping needs at least two hosts")
        spec = self._child_spec()
        pairs = [(a, b) for i, a in enumerate(self.hosts) for b in self.hosts[i + 1:]]
        ifaces = {h.name: route_iface(h, next(p for p in self.hosts if p is not h).address)
                  for h in self.hosts}
        if spec.startswith("netem"):
            for h in self.hosts:
                reason = netem_support(h, ifaces[h.name])
                if reason:
                    raise NetemUnavailable(h.name, reason)
        before = [ping(a, b.address) for a, b in pairs] if self.delay_ms or self.jitter_ms \
            else []
        for h in self.hosts:
            q = PeerQdiscs(h, ifaces[h.name], {p.address: spec for p in self.hosts if p is not h})
            self._qdiscs.append(q)
            q.install()
        applied = Applied(self.name, self.target_name,
                          {"delay_ms": self.delay_ms, "jitter_ms": self.jitter_ms,
                           "rate_kbit": self.rate_kbit, "qdisc": spec})
        shortfalls: list[str] = []
        if before:
            after = [ping(a, b.address) for a, b in pairs]
            applied.measured["rtt"] = [vars(s) for s in after]
            applied.measured["rtt_before"] = [vars(s) for s in before]
            shortfalls += self._judge_delay(before, after)
        if self.rate_kbit:
            measured = [self._goodput(a, b) for a, b in pairs]
            applied.measured["goodput_kbit"] = measured
            for m in measured:
                share = m["kbit"] / self.rate_kbit
                if not 0.6 <= share <= 1.05:
                    shortfalls.append(f"{m['src']} -> {m['dst']}: goodput {m['kbit']:.0f} kbit/s "
                                      f"under a {self.rate_kbit} kbit/s limit ({share:.0%})")
        applied.shortfall = "; ".join(shortfalls)
        return applied

    def _judge_delay(self, before: list[RttSample], after: list[RttSample]) -> list[str]:
        out = []
        want = 2 * self.delay_ms
        for b, a in zip(before, after, strict=True):
            if a.received < PINGS // 2:
                out.append(f"{a.src} -> {a.dst}: only {a.received}/{PINGS} pings answered")
                continue
            added = a.median_ms - b.median_ms
            if abs(added - want) > max(2.0, 0.2 * want):
                out.append(f"{a.src} -> {a.dst}: round trip grew by {added:.1f} ms, "
                           f"expected {want:g} ms")
            if self.jitter_ms and a.stdev_ms < 0.5 * self.jitter_ms:
                out.append(f"{a.src} -> {a.dst}: round-trip spread {a.stdev_ms:.1f} ms, "
                           f"expected about {self.jitter_ms * 2 ** 0.5:.1f} ms")
        return out

    def _goodput(self, src: Host, dst: Host) -> dict[str, Any]:
        size = int(self.rate_kbit * 1000 / 8 * RATE_SECONDS) if self.rate_kbit else 0
        pid = dst.run(f"setsid nc -l -p {RATE_PORT} > /dev/null 2>&1 < /dev/null & echo $!",
                      timeout=CMD_TIMEOUT_S).stdout.split()[-1]
        deadline = time.monotonic() + 10
        while not dst.run(f"ss -ltn 'sport = :{RATE_PORT}' | grep -q LISTEN",
                          timeout=CMD_TIMEOUT_S, check=False).ok:
            if time.monotonic() > deadline:
                raise FaultError(f"{dst.name}: the measuring listener did not start")
            time.sleep(0.05)  # condition poll
        res = src.run(f"head -c {size} /dev/zero > /tmp/repro-rate.bin; "
                      "s=$(date +%s%N); "
                      f"nc -N -w 5 {dst.address} {RATE_PORT} < /tmp/repro-rate.bin; "
                      "e=$(date +%s%N); rm -f /tmp/repro-rate.bin; echo $(( (e - s) / 1000 ))",
                      timeout=RATE_SECONDS * 10 + 10)
        micros = int(res.stdout.strip().splitlines()[-1])
        dst.run(f"kill {pid} 2>/dev/null; true", timeout=CMD_TIMEOUT_S, check=False)
        return {"src": src.name, "dst": dst.name, "bytes": size, "seconds": micros / 1e6,
                "kbit": size * 8 / 1000 / max(micros / 1e6, 1e-6)}

    def heal(self) -> None:
        """Idempotent: remove every qdisc this fault installed."""
        for q in self._qdiscs:
            q.remove()
        self._qdiscs = []
