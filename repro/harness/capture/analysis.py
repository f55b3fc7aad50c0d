"""TCP retransmission analysis of a pcap, with scapy.

Model. A flow is one direction of a TCP connection (src:port > dst:port).
Sequence numbers are made relative to the first one seen in that direction
and unwrapped past 2^32. A segment occupies [seq, seq + payload + SYN + FIN);
it is a *retransmission* when it starts below the highest end seen so far in
its flow. Every transmission of a segment is keyed by its start: the gaps
between successive transmissions of one segment show the sender's
retransmission timer, and a *back-off run* is a chain of such gaps each at
least BACKOFF_RATIO times the one before (TCP doubles its RTO after every
loss of the same segment: the postmortem's tcpdump showed one segment sent
again 40 s and then 80 s later). Zero windows (a packet advertising window
0, not a reset) and resets are counted per flow too.

`analyse(pcap)` gives an `Analysis`: per-flow `FlowStats`, overall figures
(retransmissions, longest gap, longest back-off run) and `table()` for the
report (tabulate).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.utils import PcapReader
from tabulate import tabulate

BACKOFF_RATIO = 1.5   # a doubling timer, with room for timer granularity
MIN_BACKOFF_GAP_S = 0.1  # shorter gaps are fast retransmits or loss probes, not the RTO
SEQ_MOD = 1 << 32
SYN, FIN, RST = 0x02, 0x01, 0x04


@dataclass(frozen=True)
class BackoffRun:
    flow: str
    seq: int                   # relative sequence number of the segment
    start_s: float             # first transmission in the run, from the capture's start
    gaps: tuple[float, ...]    # successive gaps, each >= BACKOFF_RATIO x the previous

    @property
    def retransmissions(self) -> int:
        return len(self.gaps)

    def describe(self) -> str:
        return (f"{self.flow} seq {self.seq}: sent again after "
                + ", ".join(f"{g:.1f}" for g in self.gaps) + " s")


@dataclass
class FlowStats:
    flow: str
    packets: int = 0
    segments: int = 0          # transmissions that occupy sequence space (data, SYN, FIN)
    data_segments: int = 0
    payload_bytes: int = 0
    retransmissions: int = 0
    zero_windows: int = 0
    resets: int = 0
    first_s: float = 0.0
    last_s: float = 0.0
    longest_gap_s: float = 0.0       # between two transmissions of one segment
    longest_gap_seq: int | None = None
    longest_gap_at_s: float = 0.0    # when the later of the two was sent
    longest_backoff: BackoffRun | None = None

    @property
    def retransmitted_share(self) -> float:
        return self.retransmissions / self.segments if self.segments else 0.0


@dataclass
class _FlowState:
    stats: FlowStats
    base_seen: bool = False
    last_raw: int = 0
    last_rel: int = 0
    high: int = 0
    sends: dict[int, list[float]] = field(default_factory=dict)

    def relative(self, seq: int) -> int:
        """Sequence number relative to the flow's first, unwrapped past 2^32."""
        if not self.base_seen:
            self.base_seen, self.last_raw, self.last_rel = True, seq, 0
            return 0
        diff = (seq - self.last_raw + SEQ_MOD // 2) % SEQ_MOD - SEQ_MOD // 2
        rel = self.last_rel + diff
        if diff > 0:
            self.last_raw, self.last_rel = seq, rel
        return rel


@dataclass
class Analysis:
    pcap: str
    packets: int
    duration_s: float
    flows: list[FlowStats]

    @property
    def retransmissions(self) -> int:
        return sum(f.retransmissions for f in self.flows)

    @property
    def longest_gap(self) -> FlowStats | None:
        with_gap = [f for f in self.flows if f.longest_gap_seq is not None]
        return max(with_gap, key=lambda f: f.longest_gap_s, default=None)

    @property
    def longest_backoff(self) -> BackoffRun | None:
        runs = [f.longest_backoff for f in self.flows if f.longest_backoff]
        return max(runs, key=_span, default=None)

    def figures(self) -> dict[str, Any]:
        gap = self.longest_gap
        run = self.longest_backoff
        return {
            "capture_packets": self.packets,
            "flows": len(self.flows),
            "retransmissions": self.retransmissions,
            "longest_retransmission_gap_s": round(gap.longest_gap_s, 3) if gap else 0.0,
            "longest_backoff_run": run.retransmissions if run else 0,
            "longest_backoff_gaps_s": [round(g, 2) for g in run.gaps] if run else [],
            "zero_windows": sum(f.zero_windows for f in self.flows),
            "resets": sum(f.resets for f in self.flows),
        }

    def table(self, fmt: str = "github") -> str:
        rows = []
        for f in sorted(self.flows, key=lambda f: f.first_s):
            run = f.longest_backoff
            rows.append([f.flow, f.packets, f.data_segments, f.retransmissions,
                         f"{f.retransmitted_share:.0%}", round(f.longest_gap_s, 2),
                         " > ".join(f"{g:.1f}" for g in run.gaps) if run else "",
                         f.zero_windows, f.resets, round(f.last_s - f.first_s, 1)])
        return tabulate(rows, tablefmt=fmt, headers=[
            "flow", "packets", "data segs", "retrans", "retrans %", "longest gap s",
            "back-off run s", "zero win", "resets", "span s"])


def analyse(pcap: Path) -> Analysis:
    states: dict[str, _FlowState] = {}
    t0: float | None = None
    last = 0.0
    count = 0
    with PcapReader(str(pcap)) as reader:
        for pkt in reader:
            if IP not in pkt or TCP not in pkt:
                continue
            t = float(pkt.time)
            if t0 is None:
                t0 = t
            rel_t = t - t0
            last = rel_t
            count += 1
            ip, tcp = pkt[IP], pkt[TCP]
            flow = f"{ip.src}:{tcp.sport} > {ip.dst}:{tcp.dport}"
            st = states.get(flow)
            if st is None:
                st = states[flow] = _FlowState(FlowStats(flow, first_s=rel_t))
            _account(st, ip, tcp, rel_t)
    flows = []
    for st in states.values():
        _finish(st)
        flows.append(st.stats)
    return Analysis(str(pcap), count, round(last, 3), flows)


def _payload_len(ip: Any, tcp: Any) -> int:
    return max(0, int(ip.len) - int(ip.ihl) * 4 - int(tcp.dataofs) * 4)


def _account(st: _FlowState, ip: Any, tcp: Any, t: float) -> None:
    s = st.stats
    s.packets += 1
    s.last_s = t
    flags = int(tcp.flags)
    if flags & RST:
        s.resets += 1
    elif tcp.window == 0:
        s.zero_windows += 1
    payload = _payload_len(ip, tcp)
    length = payload + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
    if length == 0:
        return
    seq = st.relative(int(tcp.seq))
    s.segments += 1
    if payload:
        s.data_segments += 1
        s.payload_bytes += payload
    if seq < st.high:
        s.retransmissions += 1
    st.high = max(st.high, seq + length)
    st.sends.setdefault(seq, []).append(t)


def _finish(st: _FlowState) -> None:
    s = st.stats
    for seq, times in st.sends.items():
        if len(times) < 2:
            continue
        gaps = [b - a for a, b in itertools.pairwise(times)]
        i = max(range(len(gaps)), key=gaps.__getitem__)
        if gaps[i] > s.longest_gap_s:
            s.longest_gap_s, s.longest_gap_seq, s.longest_gap_at_s = gaps[i], seq, times[i + 1]
        run = _longest_backoff(s.flow, seq, times, gaps)
        if run and (s.longest_backoff is None or _span(run) > _span(s.longest_backoff)):
            s.longest_backoff = run


def _span(run: BackoffRun) -> tuple[float, int]:
    """Back-off runs compare by how long the sender kept waiting, then by length."""
    return sum(run.gaps), run.retransmissions


def _longest_backoff(flow: str, seq: int, times: list[float], gaps: list[float]
                     ) -> BackoffRun | None:
    """The longest chain of at least two gaps, each >= BACKOFF_RATIO x the one before."""
    best: tuple[int, int] | None = None
    start: int | None = None

    def close(end: int) -> None:
        nonlocal best
        if start is not None and end - start >= 2 and (best is None
                                                        or end - start > best[1] - best[0]):
            best = (start, end)

    for i, gap in enumerate(gaps):
        if start is not None and gap >= BACKOFF_RATIO * gaps[i - 1]:
            continue  # the timer doubled again: the run goes on
        close(i)
        start = i if gap >= MIN_BACKOFF_GAP_S else None
    close(len(gaps))
    if best is None:
        return None
    a, b = best
    return BackoffRun(flow, seq, times[a], tuple(gaps[a:b]))
