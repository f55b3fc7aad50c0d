"""The retransmission analysis on hand-built pcaps (real captures: test_capture_docker)."""

from __future__ import annotations

import itertools
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from repro.harness.capture import analyse

SRV, CLI = "10.9.0.2", "10.9.0.3"
MSS = 1000


def seg(t: float, seq: int, size: int = MSS, flags: str = "A", window: int = 500,
        src: str = SRV, dst: str = CLI, sport: int = 80, dport: int = 40000) -> Packet:
    p = Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, seq=seq % (1 << 32),
                                             flags=flags, window=window)
    if size:
        p = p / Raw(b"x" * size)
    p.time = t
    return p


def ack(t: float, window: int = 500, flags: str = "A") -> Packet:
    return seg(t, 1, 0, flags=flags, window=window, src=CLI, dst=SRV, sport=40000, dport=80)


def write(tmp_path: Path, pkts: list[Packet]) -> Path:
    path = tmp_path / "c.pcap"
    wrpcap(str(path), pkts)
    return path


def test_backoff_chain_like_the_postmortem(tmp_path: Path) -> None:
    isn = 4_000_000_000  # wraps past 2^32 within the flow
    pkts = [seg(100.0 + i * 0.01, isn + i * MSS) for i in range(10)]
    # segment 5 lost, sent again 0.2, 0.4, 0.8, ... 40, 80 s apart (an RTO that doubles)
    t = 100.05  # when segment 5 first went out
    for gap in (0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 40.0, 80.0):
        t += gap
        pkts.append(seg(t, isn + 5 * MSS))
    pkts += [ack(t + 0.001), seg(t + 0.01, isn + 10 * MSS)]
    # a chain that stops doubling is cut: 1, 2, 2.5 gives the run (1, 2) only
    pkts += [seg(300.0, isn + 11 * MSS)] + [seg(300.0 + x, isn + 11 * MSS) for x in (1, 3, 5.5)]
    a = analyse(write(tmp_path, pkts))
    data = next(f for f in a.flows if f.flow.startswith(SRV))
    assert data.data_segments == 25 and data.retransmissions == 13
    assert a.retransmissions == 13
    short = [f for f in a.flows if f.longest_backoff]
    assert len(short) == 1
    assert round(data.longest_gap_s, 3) == 80.0
    assert data.longest_gap_seq == 5 * MSS
    run = a.longest_backoff
    assert run is not None and run.seq == 5 * MSS
    assert tuple(round(g, 3) for g in run.gaps) == (0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6,
                                                    40.0, 80.0)
    assert run.retransmissions == 10 and "80.0 s" in run.describe()
    figs = a.figures()
    assert figs["longest_retransmission_gap_s"] == 80.0 and figs["longest_backoff_run"] == 10
    table = a.table()
    assert "longest gap s" in table and "80" in table


def test_zero_windows_resets_and_syn_retransmission(tmp_path: Path) -> None:
    pkts = [seg(0.0, 7, 0, flags="S"), seg(1.0, 7, 0, flags="S"), seg(3.0, 7, 0, flags="S"),
            seg(3.1, 8), ack(3.2, window=0), ack(3.3, window=0), ack(3.4, flags="R", window=0)]
    a = analyse(write(tmp_path, pkts))
    srv = next(f for f in a.flows if f.flow.startswith(SRV))
    cli = next(f for f in a.flows if f.flow.startswith(CLI))
    assert srv.retransmissions == 2            # the SYN, twice
    assert srv.longest_gap_s == 2.0
    assert srv.longest_backoff is not None and srv.longest_backoff.gaps == (1.0, 2.0)
    assert cli.zero_windows == 2 and cli.resets == 1  # a reset is not a zero window
    assert a.figures()["zero_windows"] == 2 and a.figures()["resets"] == 1


def test_clean_transfer_has_no_retransmissions(tmp_path: Path) -> None:
    pkts = [seg(i * 0.001, 1 + i * MSS) for i in range(50)] + [ack(0.06)]
    a = analyse(write(tmp_path, pkts))
    assert a.retransmissions == 0 and a.longest_gap is None and a.longest_backoff is None
    assert a.packets == 51 and len(a.flows) == 2
    assert a.figures()["longest_retransmission_gap_s"] == 0.0


def test_backoff_run_is_cut_where_the_timer_stops_doubling() -> None:
    from repro.harness.capture.analysis import _longest_backoff
    times = [0.0, 1.0, 3.0, 5.5, 6.0, 7.0, 9.0, 13.0]
    gaps = [b - a for a, b in itertools.pairwise(times)]  # 1 2 2.5 .5 1 2 4
    run = _longest_backoff("f", 0, times, gaps)
    assert run is not None and run.gaps == (0.5, 1.0, 2.0, 4.0) and run.start_s == 5.5
    assert _longest_backoff("f", 0, [0.0, 1.0, 1.5], [1.0, 0.5]) is None


def test_a_fast_retransmit_does_not_start_a_backoff_run() -> None:
    from repro.harness.capture.analysis import _longest_backoff
    times = [0.0, 0.001, 0.45, 1.31, 3.04]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    run = _longest_backoff("f", 0, times, gaps)
    assert run is not None and run.start_s == 0.001 and len(run.gaps) == 3
