"""Packet capture on a host for a fault window, and its analysis with scapy.

`Capture` (repro.harness.capture.tcpdump) runs tcpdump on the client side of a path
for the fault window and keeps the pcap in the report directory;
`analyse` (repro.harness.capture.analysis) reads it back: per-flow retransmissions,
the longest gap between transmissions of one segment, exponential back-off
runs, zero windows and resets, and a table for the report.
"""

from repro.harness.capture.analysis import Analysis, BackoffRun, FlowStats, analyse
from repro.harness.capture.tcpdump import Capture, CaptureResult

__all__ = ["Analysis", "BackoffRun", "Capture", "CaptureResult", "FlowStats", "analyse"]
