"""Packet loss between hosts of the run, measured from counters.

Model. The fault impairs both directions of every pair it is given (by
default every pair of its hosts; a star of build hosts around one git server
is `pairs=[(server, b) for b in builds]`). A direction src -> dst is dropped
either

- by netem on src's egress (hosts whose kernel has netem: QEMU guests), in a
  child qdisc scoped to dst's address (repro.harness.faults.link.PeerQdiscs), or
- by nftables on dst's ingress (hosts without netem, as this machine's Docker
  containers): a table `repro-<short>-loss...` in the host's own network
  namespace, prerouting, scoped to src's address. Dropping on the *receiver*
  matters: a drop in the sender's own output path is reported back to its
  TCP, which simply sends again (no loss at all, as TCP sees it).

Loss models (`LossModel`): independent losses (`burst = 1`: netem
`loss random P%`, nft `numgen random`), or bursts (`burst = B` packets on
average) after Gilbert-Elliott with all packets lost in the bad state:
r = 1/B, p = r·L/(1-L), stationary loss L. netem runs it as
`loss gemodel p r 100% 0%` (never a correlation argument: netem's correlated
loss is broken); nftables keeps the state in the connection's `ct mark`, so
the state is per flow and direction rather than per interface.

Measurement. Every host's interface toward its peers gets offloads turned
off (a rule that sees 44-segment super-packets makes "30 %" loss harmless),
and a packet larger than the MTU seen by the rule is counted as proof that
offloads leaked. After injecting, a calibration burst of UDP datagrams (to
the discard port) goes each way until the counters have enough packets to
tell the loss within ±2 points (5 000 for independent losses: binomial
±2 points at 3 sigma; more for bursts, whose samples are correlated: 5 000
times the variance inflation (1+ρ)/(1-ρ), ρ = 1-p-r). The bursts of every
direction go out at once. Offered
vs dropped come from the nft counters or the netem qdisc's own statistics;
`judge_loss` turns them into a shortfall (the run is inconclusive) and is
the same pure function the checkers use on the history.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from repro.harness.errors import FaultError, HostCommandError
from repro.harness.faults.base import Applied, injected, record_measure
from repro.harness.faults.link import (
    CMD_TIMEOUT_S,
    NetemUnavailable,
    Offloads,
    PeerQdiscs,
    netem_support,
    route_iface,
)
from repro.harness.history import History
from repro.harness.hosts.base import Host
from repro.harness.run import Run

Mechanism = Literal["auto", "nft", "netem"]
TOLERANCE = 0.02
MIN_PACKETS = 5000
DISCARD_PORT = 9
CT_MARK = 0x5250
CALIBRATION_ROUNDS = 4
SCALE = 1_000_000  # numgen modulus: rates resolved to 1 ppm


@dataclass(frozen=True)
class LossModel:
    rate: float          # stationary loss probability, 0 <= rate < 1
    burst: float = 1.0   # mean number of packets lost in a row; 1 = independent losses

    def validate(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"loss rate must be in [0, 1), got {self.rate}")
        if self.burst < 1.0:
            raise ValueError(f"burst must be at least 1 packet, got {self.burst}")

    @property
    def independent(self) -> bool:
        return self.burst <= 1.0

    def gilbert(self) -> tuple[float, float]:
        """(p, r): good->bad and bad->good transition probabilities per packet."""
        r = 1.0 / self.burst
        return r * self.rate / (1.0 - self.rate), r

    @property
    def inflation(self) -> float:
        """Variance inflation of the measured loss rate over the binomial one."""
        if self.independent or self.rate == 0:
            return 1.0
        p, r = self.gilbert()
        rho = 1.0 - p - r
        return (1.0 + rho) / (1.0 - rho)

    def required_packets(self, base: int = MIN_PACKETS) -> int:
        return math.ceil(base * self.inflation)

    def netem(self) -> str:
        if self.independent:
            return f"loss random {self.rate * 100:.4f}%"
        p, r = self.gilbert()
        return f"loss gemodel {p * 100:.4f}% {r * 100:.4f}% 100% 0%"

    def describe(self) -> str:
        kind = "independent" if self.independent else f"bursts of {self.burst:g} packets"
        return f"{self.rate:.0%} loss, {kind}"


def judge_loss(rate: float, offered: int, dropped: int, oversize: int = 0,
               required: int = MIN_PACKETS, tolerance: float = TOLERANCE) -> str:
    """"" when the measured loss shows the fault took effect, else why it did not."""
    if oversize:
        return (f"{oversize} of {offered} packets were larger than the MTU at the drop rule: "
                "segmentation offload was on and drops hit whole super-packets")
    if offered < required:
        return (f"only {offered} packets went through the fault; {required} are needed to tell "
                f"the loss within ±{tolerance * 100:.0f} points")
    achieved = dropped / offered
    if abs(achieved - rate) > tolerance:
        return (f"achieved loss {achieved:.1%} over {offered} packets, asked {rate:.1%}: "
                f"more than {tolerance * 100:.0f} points off")
    return ""


@dataclass
class Direction:
    src: Host
    dst: Host
    mechanism: Literal["nft", "netem"]
    index: int  # position among the directions installed on the same host


@dataclass
class DirectionCount:
    src: str
    dst: str
    mechanism: str
    offered: int = 0
    dropped: int = 0
    oversize: int = 0

    @property
    def achieved(self) -> float:
        return self.dropped / self.offered if self.offered else 0.0

    def minus(self, other: DirectionCount) -> DirectionCount:
        return DirectionCount(self.src, self.dst, self.mechanism, self.offered - other.offered,
                              self.dropped - other.dropped, self.oversize - other.oversize)


@dataclass
class LossMeasurement:
    model: LossModel
    directions: list[DirectionCount]
    required: int

    def shortfalls(self) -> list[str]:
        out = []
        for d in self.directions:
            why = judge_loss(self.model.rate, d.offered, d.dropped, d.oversize, self.required)
            if why:
                out.append(f"{d.src} -> {d.dst} ({d.mechanism}): {why}")
        return out

    def fields(self) -> dict[str, Any]:
        """Flat, JSON-friendly: what fault.measure events carry for the checkers."""
        return {"rate": self.model.rate, "burst": self.model.burst, "required": self.required,
                "directions": [{**asdict(d), "achieved": round(d.achieved, 4)}
                               for d in self.directions],
                "offered": sum(d.offered for d in self.directions),
                "dropped": sum(d.dropped for d in self.directions)}


@dataclass
class _HostState:
    host: Host
    iface: str
    offloads: Offloads
    nft_sources: list[Direction] = field(default_factory=list)   # ingress drops here
    netem: PeerQdiscs | None = None                              # egress drops here
    netem_dirs: list[Direction] = field(default_factory=list)
    nft_installed: bool = False
    mtu: int = 1500


class PacketLoss:
    """Loss on every direction between `hosts` (at least two)."""

    name = "loss"

    def __init__(self, run: Run, hosts: Sequence[Host], model: LossModel, *,
                 pairs: Sequence[tuple[Host, Host]] | None = None,
                 mechanism: Mechanism = "auto", label: str = "", calibrate: bool = True,
                 offloads_off: bool = True):
        """Loss on both directions of every pair (default: every pair of `hosts`).

        `offloads_off=False` exists only to show the physics: drops then hit super-packets,
        the oversize counter sees them and the run is inconclusive."""
        model.validate()
        if len(hosts) < 2:
            raise FaultError("packet loss needs at least two hosts")
        self.run = run
        self.hosts = list(hosts)
        self.pairs = list(pairs) if pairs is not None else \
            [(a, b) for i, a in enumerate(self.hosts) for b in self.hosts[i + 1:]]
        if any(a is b for a, b in self.pairs) or \
                any(not any(h in p for p in self.pairs) for h in self.hosts):
            raise FaultError("every host needs a lossy pair, with a host other than itself")
        self.model = model
        self.mechanism = mechanism
        self.calibrate = calibrate
        self.offloads_off = offloads_off
        self.table = run.name("loss", label) if label else run.name("loss")
        self.final: LossMeasurement | None = None
        self._states: dict[str, _HostState] = {}
        self._directions: list[Direction] = []
        self._calibration: LossMeasurement | None = None

    @property
    def target_name(self) -> str:
        return ",".join(h.name for h in self.hosts)

    # -- plan --------------------------------------------------------------------------
    def _plan(self) -> None:
        netem: dict[str, str] = {}
        for h in self.hosts:
            peer = next((b if a is h else a) for a, b in self.pairs if h in (a, b))
            iface = route_iface(h, peer.address)
            self._states[h.name] = _HostState(h, iface, Offloads(h, iface))
            netem[h.name] = "nft only" if self.mechanism == "nft" else netem_support(h, iface)
        for src, dst in [*self.pairs, *((b, a) for a, b in self.pairs)]:
            if self.mechanism == "netem" and netem[src.name]:
                raise NetemUnavailable(src.name, netem[src.name])
            if not netem[src.name]:
                st = self._states[src.name]
                d = Direction(src, dst, "netem", len(st.netem_dirs))
                st.netem_dirs.append(d)
            else:
                st = self._states[dst.name]
                d = Direction(src, dst, "nft", len(st.nft_sources))
                st.nft_sources.append(d)
            self._directions.append(d)

    def _nft_ruleset(self, st: _HostState) -> str:
        lines = [f"table inet {self.table} {{"]
        for d in st.nft_sources:
            lines += [f"  counter o{d.index} {{}}", f"  counter d{d.index} {{}}",
                      f"  counter x{d.index} {{}}"]
        prio = -300 if self.model.independent else -150  # bursts need conntrack (-200) first
        lines.append(f"  chain ingress {{ type filter hook prerouting priority {prio}; "
                     "policy accept;")
        for d in st.nft_sources:
            m, i = f"ip saddr {d.src.address}", d.index
            lines += [f"    {m} counter name o{i}",
                      f"    {m} meta length > {st.mtu} counter name x{i}"]
            if self.model.independent:
                lines.append(f"    {m} numgen random mod {SCALE} < "
                             f"{round(self.model.rate * SCALE)} counter name d{i} drop")
            else:
                p, r = self.model.gilbert()
                lines += [f"    {m} ct mark {CT_MARK:#x} numgen random mod {SCALE} < "
                          f"{round(r * SCALE)} ct mark set 0 counter name d{i} drop",
                          f"    {m} ct mark {CT_MARK:#x} counter name d{i} drop",
                          f"    {m} numgen random mod {SCALE} < {round(p * SCALE)} "
                          f"ct mark set {CT_MARK:#x}"]
        lines += ["  }", "}"]
        return "\n".join(lines) + "\n"

    # -- fault -------------------------------------------------------------------------
    def inject(self) -> Applied:
        self._plan()
        offloads: dict[str, dict[str, bool]] = {}
        for st in self._states.values():
            offloads[st.host.name] = st.offloads.disable() if self.offloads_off else {}
            st.mtu = int(st.host.run(f"cat /sys/class/net/{st.iface}/mtu",
                                     timeout=CMD_TIMEOUT_S).stdout.strip())
            if st.nft_sources:
                st.host.put(self._nft_ruleset(st).encode(), f"/tmp/{self.table}.nft", 0o600)
                st.nft_installed = True
                st.host.run(f"nft -f /tmp/{self.table}.nft; rc=$?; rm -f /tmp/{self.table}.nft;"
                            " exit $rc", timeout=CMD_TIMEOUT_S)
            if st.netem_dirs:
                st.netem = PeerQdiscs(st.host, st.iface, {
                    d.dst.address: f"netem {self.model.netem()} limit 100000"
                    for d in st.netem_dirs})
                st.netem.install()
        required = self.model.required_packets()
        applied = Applied(self.name, self.target_name, {
            "rate": self.model.rate, "burst": self.model.burst, "model": self.model.describe(),
            "hosts": [h.name for h in self.hosts],
            "directions": [f"{d.src.name} -> {d.dst.name}: {d.mechanism}"
                           for d in self._directions],
            "table": self.table})
        leaked = {h: [k for k, on in s.items() if on] for h, s in offloads.items()}
        applied.measured["offloads_left_on"] = {h: v for h, v in leaked.items() if v}
        shortfalls = [f"{h}: offloads {', '.join(v)} could not be turned off"
                      for h, v in leaked.items() if v]
        if self.calibrate:
            cal = self._calibrate(required)
            self._calibration = cal
            applied.measured["calibration"] = cal.fields()
            shortfalls += cal.shortfalls()
        applied.shortfall = "; ".join(shortfalls)
        return applied

    def _calibrate(self, required: int) -> LossMeasurement:
        """Bursts every way at once until each direction has `required` packets counted."""
        before = self.measure()
        delta = before.directions
        missing = {id(d): required for d in self._directions}
        with ThreadPoolExecutor(max_workers=len(self._directions)) as pool:
            for _ in range(CALIBRATION_ROUNDS):
                # a tenth more than needed: the burst usually suffices in one round
                jobs = [(d.src, d.dst.address, max(500, missing[id(d)] * 11 // 10))
                        for d in self._directions if missing[id(d)] > 0]
                list(pool.map(lambda job: _udp_burst(*job), jobs))
                now = self.measure()
                delta = [a.minus(b) for a, b in zip(now.directions, before.directions,
                                                    strict=True)]
                missing = {id(d): required - c.offered
                           for d, c in zip(self._directions, delta, strict=True)}
                if all(m <= 0 for m in missing.values()):
                    break
        return LossMeasurement(self.model, delta, required)

    def measure(self) -> LossMeasurement:
        counts: list[DirectionCount] = []
        nft = {name: self._nft_counters(st) for name, st in self._states.items()
               if st.nft_installed}
        qd = {name: st.netem.stats() for name, st in self._states.items()
              if st.netem and st.netem.installed}
        for d in self._directions:
            c = DirectionCount(d.src.name, d.dst.name, d.mechanism)
            if d.mechanism == "nft":
                got = nft.get(d.dst.name, {})
                c.offered, c.dropped = got.get(f"o{d.index}", 0), got.get(f"d{d.index}", 0)
                c.oversize = got.get(f"x{d.index}", 0)
            else:
                s = qd.get(d.src.name, {}).get(d.dst.address)
                if s:
                    c.offered, c.dropped = s.offered, s.drops
            counts.append(c)
        return LossMeasurement(self.model, counts, self.model.required_packets())

    def _nft_counters(self, st: _HostState) -> dict[str, int]:
        res = st.host.run(f"nft -j list counters table inet {self.table}",
                          timeout=CMD_TIMEOUT_S, check=False)
        if not res.ok:
            return {}
        out = {}
        for item in json.loads(res.stdout).get("nftables", []):
            c = item.get("counter")
            if c:
                out[c["name"]] = int(c["packets"])
        return out

    def heal(self) -> None:
        """Idempotent: read the counters one last time, remove every rule, restore offloads."""
        if any(st.nft_installed or (st.netem and st.netem.installed)
               for st in self._states.values()):
            with contextlib.suppress(HostCommandError, ValueError):
                self.final = self.measure()
        errors = []
        for st in self._states.values():
            try:
                if st.nft_installed:
                    st.host.run(f"nft delete table inet {self.table} 2>/dev/null; true",
                                timeout=CMD_TIMEOUT_S, check=False)
                    st.nft_installed = False
                if st.netem:
                    st.netem.remove()
                st.offloads.restore()
            except HostCommandError as exc:
                errors.append(str(exc))
        if errors:
            raise FaultError("healing packet loss failed: " + "; ".join(errors))


def _udp_burst(src: Host, dst: str, count: int) -> None:
    """`count` small UDP datagrams from `src` to `dst`'s discard port, as fast as they go."""
    src.run("python3 -c 'import socket,sys\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            f"a=(\"{dst}\",{DISCARD_PORT})\n"
            f"for _ in range({count}): s.sendto(b\"repro-calibration\",a)'",
            timeout=60)


@contextlib.contextmanager
def measured_loss(fault: PacketLoss, history: History) -> Iterator[Applied]:
    """`injected`, plus a `fault.measure` event with the whole window's counts after heal."""
    try:
        with injected(fault, history) as applied:
            yield applied
    finally:
        final = fault.final
        if final is not None:
            record_measure(history, fault.name, fault.target_name,
                           shortfall="; ".join(final.shortfalls()), **final.fields())
