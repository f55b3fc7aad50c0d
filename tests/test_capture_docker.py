"""tcpdump captures made between Docker hosts, analysed with scapy (no hand-built packets)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repro.harness.capture import Capture, analyse
from repro.harness.faults.base import injected
from repro.harness.faults.partition import Partition
from repro.harness.history import History
from repro.harness.hosts.base import Host
from repro.harness.procs import wait_for
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


def _sender_backoff(server: Host, port: int) -> int:
    """The sender's RTO back-off count on its connection to `port` (ss -ti), 0 if none."""
    out = server.run(f"ss -tni state established '( dport = :{port} )'", timeout=10,
                     check=False).stdout
    found = re.search(r"\bbackoff:(\d+)", out)
    return int(found.group(1)) if found else 0


def test_cut_transfer_shows_retransmissions_and_backoff(
        run: Run, hosts: dict[str, Host], tmp_path: Path) -> None:
    """Deterministic: the second half of a transfer is sent into a partition, so the
    sender's RTO must back off (0.2, 0.4, 0.8 s ...) until the cut heals."""
    client, server, port = hosts["client"], hosts["server"], 5402
    fifo = "/run/repro-capture-second-half"
    client.run(f"setsid nc -l -p {port} > /dev/null 2>&1 < /dev/null &", timeout=10)
    server.run(f"rm -f {fifo}; mkfifo {fifo}", timeout=10)
    with Capture(client, run, server.address, tmp_path / "cut.pcap", label="cut") as cap:
        server.run(f"setsid sh -c '(head -c 20000 /dev/urandom; cat {fifo}) | "
                   f"nc -N -w 60 {client.address} {port}' > /dev/null 2>&1 < /dev/null &",
                   timeout=10)
        first_half_acked = (f"ss -tn state established '( dport = :{port} )' "
                            "| awk 'NR>1 && $2==0' | grep -q .")
        wait_for(lambda: server.run(first_half_acked, timeout=10, check=False).ok or None,
                 timeout=20, interval=0.2)
        fault = Partition(run, [client], [server])
        with injected(fault, History()) as applied:
            assert applied.effective, applied.shortfall
            server.run(f"setsid sh -c 'head -c 60000 /dev/urandom > {fifo}' "
                       "> /dev/null 2>&1 < /dev/null &", timeout=10)
            wait_for(lambda: _sender_backoff(server, port) >= 3 or None, timeout=20, interval=0.2)
        assert fault.restored
        sender = f"pgrep -f 'n[c] -N -w 60 {client.address} {port}'"  # [c]: not pgrep's sh
        wait_for(lambda: not server.run(sender, timeout=10, check=False).ok or None,
                 timeout=30, interval=0.2)
    server.run(f"rm -f {fifo}", timeout=10)
    assert cap.result is not None and cap.result.complete
    a = analyse(cap.result.pcap)
    data = max(a.flows, key=lambda f: f.payload_bytes)
    # the capture sits before the cut (prerouting): what the server sent is in it, resent too
    assert data.retransmissions >= 3 and data.payload_bytes > 80_000
    assert data.longest_gap_s >= 0.2           # at least one retransmission timeout (200 ms)
    chain = a.longest_backoff
    assert chain is not None and chain.retransmissions >= 3
    assert all(b >= 1.5 * x for x, b in zip(chain.gaps, chain.gaps[1:], strict=False))
    assert "retrans" in a.table()
