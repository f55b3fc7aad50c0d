"""tcpdump captures made between Docker hosts, analysed with scapy (no hand-built packets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.harness.capture import Capture, analyse
from repro.harness.faults.base import injected
from repro.harness.faults.loss import LossModel, PacketLoss
from repro.harness.history import History
from repro.harness.hosts.base import Host
from repro.harness.run import Run
from tests.test_loss_docker import transfer

pytestmark = pytest.mark.docker
HOSTS = ("docker", ["client", "server"])  # provider, roles: see tests/conftest.py


def test_clean_transfer_captured_without_retransmissions(
        run: Run, hosts: dict[str, Host], tmp_path: Path) -> None:
    client, server = hosts["client"], hosts["server"]
    with Capture(client, run, server.address, tmp_path / "clean.pcap", label="clean") as cap:
        transfer(server, client, size=500_000, port=5401)
    assert cap.result is not None and cap.result.complete and cap.result.captured > 50
    a = analyse(cap.result.pcap)
    data = max(a.flows, key=lambda f: f.payload_bytes)
    assert data.payload_bytes == 500_000 and data.retransmissions == 0
    assert a.longest_backoff is None
    assert client.run("ls /tmp | grep -c repro- || true", timeout=10).stdout.strip() == "0"


def test_lossy_transfer_shows_retransmissions_and_backoff(
        run: Run, hosts: dict[str, Host], tmp_path: Path) -> None:
    client, server = hosts["client"], hosts["server"]
    fault = PacketLoss(run, [client, server], LossModel(0.3, burst=4))
    # A back-off chain needs one segment lost twice in a row: likely, not certain, in one
    # 100 kB transfer (fast recovery often repairs the loss in 0.2 s). Up to 3 transfers.
    with injected(fault, History()) as applied:
        assert applied.effective, applied.shortfall
        for attempt in range(3):
            with Capture(client, run, server.address, tmp_path / f"lossy{attempt}.pcap",
                         label=f"lossy{attempt}") as cap:
                transfer(server, client, size=100_000, port=5402 + attempt)
            assert cap.result is not None and cap.result.complete
            a = analyse(cap.result.pcap)
            data = max(a.flows, key=lambda f: f.payload_bytes)
            # the capture sits before the drop rule: what the server sent is in it, resent too
            assert data.retransmissions > 0 and data.payload_bytes > data.data_segments
            if a.longest_backoff is not None:
                break
    assert data.longest_gap_s >= 0.2           # at least one retransmission timeout (200 ms)
    run_ = a.longest_backoff
    assert run_ is not None and all(b >= 1.5 * x for x, b in zip(run_.gaps, run_.gaps[1:],
                                                                 strict=False))
    assert "retrans" in a.table()
