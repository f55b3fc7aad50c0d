"""Benchmark of the Docker backend: host ready time and detection latency.

  .venv/bin/python -m benchmarks.bench_docker [--hosts 10] [--parallel 8] [--cuts 5]

Ready time: from `docker create` to sshd accepting a login with the run's key,
for N hosts started one at a time and for P hosts started together.
Detection latency: a heartbeat (0.25 s) watches a host; the host is cut off
the network (nftables drops everything in its namespace); latency is the time
from the cut to the first failed sample in the history.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from repro.harness.history import History
from repro.harness.hosts import open_hosts
from repro.harness.hosts.docker import DockerHost
from repro.harness.probes.heartbeat import Heartbeat
from repro.harness.run import Run, start_run

CUT = ("nft add table inet repro_cut && nft 'add chain inet repro_cut in "
       "{ type filter hook input priority -10; policy drop; }'")
HEAL = "nft delete table inet repro_cut"


def ready_times(run: Run, roles: list[str]) -> list[float]:
    with open_hosts("docker", run, roles) as hosts:
        return [h.ready_s for h in hosts.values() if isinstance(h, DockerHost)]


def detection_latencies(run: Run, cuts: int, interval: float) -> list[float]:
    out = []
    with open_hosts("docker", run, ["watched"]) as hosts:
        host = hosts["watched"]
        for _ in range(cuts):
            history = History()
            with Heartbeat(history, host.name, host.address, run.key.private_path,
                           interval_s=interval):
                while sum(1 for e in history.events() if e.get("ok")) < 4:
                    time.sleep(0.05)  # condition poll: a healthy baseline
                host.run(CUT, timeout=10)
                cut_at = history.now()
                while not [e for e in history.events() if e.t > cut_at and not e.get("ok")]:
                    time.sleep(0.01)  # condition poll: the first failed sample
                first_miss = min(e.t for e in history.events()
                                 if e.t > cut_at and not e.get("ok"))
                out.append(first_miss - cut_at)
                host.run(HEAL, timeout=10)
    return out


def summarize(name: str, xs: list[float]) -> list[object]:
    return [name, len(xs), f"{statistics.median(xs):.3f}", f"{max(xs):.3f}"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--cuts", type=int, default=5)
    ap.add_argument("--interval", type=float, default=0.25)
    args = ap.parse_args()
    reports = tempfile.TemporaryDirectory(prefix="bench-reports-")
    run = start_run(Path(reports.name))
    try:
        serial: list[float] = []
        for i in range(args.hosts):
            serial += ready_times(run, [f"s{i}"])
        parallel = ready_times(run, [f"p{i}" for i in range(args.parallel)])
        detect = detection_latencies(run, args.cuts, args.interval)
    finally:
        run.close()
        reports.cleanup()
    print(tabulate([summarize("ready, one at a time", serial),
                    summarize(f"ready, {args.parallel} in parallel", parallel),
                    summarize(f"detection latency (heartbeat {args.interval} s)", detect)],
                   headers=["docker backend", "n", "p50 s", "max s"], tablefmt="github"))


if __name__ == "__main__":
    main()
