"""Benchmark of the Docker backend: host ready against the floor, parallel start, detection.

  .venv/bin/python -m benchmarks.bench_docker [--samples 10] [--parallel 16]
      [--parallel-rounds 2] [--cuts 10] [--flood-s 10] [--only ready,parallel,...]

Every figure is measured side by side in one run, on the same image (repro-base:latest),
the rounds interleaved so that a change of load touches every contender alike:

  floor           `docker run` through the SDK (create + start, the default bridge) to
                  sshd's banner on port 22 (a TCP poll every 5 ms): what no harness can
                  beat on this machine
  testcontainers  testcontainers-python's readiness wait: DockerContainer.start() with a
                  LogMessageWaitStrategy for sshd's "Server listening on", at its default
                  poll interval (1 s) and at 0.05 s; it installs no key and logs in nowhere
  repro           DockerProvider: `ready_s` of a host, from `docker create` to sshd
                  accepting a real login with the run's key; and the whole `hosts()` entry
                  (daemon check, the run's network, the host) for one host
  user network    `docker run` on a user-defined bridge network (repro's hosts are on the
                  run's own): what that costs the floor
  parallel        N `docker run`s at once to their banners (the floor of a parallel start)
                  and one `hosts()` block of N hosts, in alternating order, R rounds: each
                  host's ready_s and the time from the start to the last host ready; the
                  ratio of these rows is to the parallel floor's last banner
  detection       a heartbeat (0.25 s) watches a host; the host is cut off the network
                  (nftables drops everything in its namespace); the time from the cut to
                  the first failed sample (any leg)
  flood           the same heartbeat on a healthy target while 20 bulk ssh streams flood
                  it (repro.harness.faults.ssh_flood, mtu_wedge's load): failed samples
                  per leg are false alarms; the slowest handshake beside it (the kernel's
                  RTT of SYN to SYN-ACK, every 0.25 s) is the tcp leg's margin

p50 / p95 per figure, ratios to the floor's p50, and the load average (1 min) at the start
and end of each part: 2 cores are shared here, and a load above ~2.5 distorts timings.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors
from tabulate import tabulate

from repro.harness import names
from repro.harness.faults.base import injected
from repro.harness.faults.ssh_flood import SshFlood
from repro.harness.history import History
from repro.harness.hosts.docker import BASE_IMAGE, DockerHost, DockerProvider, client
from repro.harness.probes.heartbeat import Heartbeat, leg
from repro.harness.run import Run, start_run

if TYPE_CHECKING:
    from docker.models.containers import Container

CUT = ("nft add table inet repro_cut && nft 'add chain inet repro_cut in "
       "{ type filter hook input priority -10; policy drop; }'")
HEAL = "nft delete table inet repro_cut"
BANNER_POLL_S = 0.005
READY_TIMEOUT_S = 30
TC_MESSAGE = "Server listening on"
PARTS = ("ready", "parallel", "detection", "flood")


def load() -> float:
    return os.getloadavg()[0]


def pct(xs: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of xs."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


# ---- contenders ------------------------------------------------------------------------------
def wait_banner(address: str, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), \
                socket.create_connection((address, 22), timeout=0.5) as s:
            s.settimeout(1.0)
            if s.recv(64).startswith(b"SSH-"):
                return
        time.sleep(BANNER_POLL_S)  # condition poll: sshd not listening yet
    raise TimeoutError(f"no sshd banner from {address} within {timeout:.0f} s")


def floor_start(dc: docker.DockerClient, run: Run, i: int, network: str = ""
                ) -> tuple[float, Container]:
    """`docker run` to the banner: (seconds, the container, still running). `network`: a
    user-defined network to attach it to instead of the default bridge."""
    t0 = time.monotonic()
    c = dc.containers.run(BASE_IMAGE, detach=True, name=run.name("floor", str(i)),
                          labels=names.run_labels(run.run_id), network=network or None)
    try:
        c.reload()
        nets = c.attrs["NetworkSettings"]["Networks"]
        wait_banner(nets[network or "bridge"]["IPAddress"])
        return time.monotonic() - t0, c
    except BaseException:
        c.remove(force=True)
        raise


def floor_once(dc: docker.DockerClient, run: Run, i: int, network: str = "") -> float:
    spent, c = floor_start(dc, run, i, network)
    c.remove(force=True)
    return spent


def testcontainers_once(run: Run, i: int, poll_s: float | None) -> float:
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # no image to pull here
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy
    strategy = LogMessageWaitStrategy(TC_MESSAGE).with_startup_timeout(READY_TIMEOUT_S)
    if poll_s is not None:
        strategy = strategy.with_poll_interval(poll_s)
    container = DockerContainer(BASE_IMAGE, name=run.name("tc", str(i)),
                                labels=names.run_labels(run.run_id)).waiting_for(strategy)
    t0 = time.monotonic()
    try:
        container.start()
        return time.monotonic() - t0
    finally:
        container.stop()


def repro_once(run: Run, i: int) -> tuple[float, float, float]:
    """(ready_s of the host, the whole hosts() entry, its exit: logs kept, host removed)."""
    t0 = time.monotonic()
    with DockerProvider().hosts(run, [f"r{i}"]) as hosts:
        entered = time.monotonic() - t0
        host = hosts[f"r{i}"]
        assert isinstance(host, DockerHost)
        t1 = time.monotonic()
    return host.ready_s, entered, time.monotonic() - t1


def have_testcontainers() -> bool:
    return importlib.util.find_spec("testcontainers") is not None


def ready_side_by_side(run: Run, samples: int) -> dict[str, list[float]]:
    dc = client()
    out: dict[str, list[float]] = {k: [] for k in ("floor", "floor_net", "tc", "tc_default",
                                                   "repro", "repro_entry", "repro_exit")}

    def repro(i: int) -> None:
        ready, entered, left = repro_once(run, i)
        out["repro"].append(ready)
        out["repro_entry"].append(entered)
        out["repro_exit"].append(left)

    net = dc.networks.create(run.name("floornet"), driver="bridge",
                             labels=names.run_labels(run.run_id))
    try:
        contenders: list[Callable[[int], None]] = [
            lambda i: out["floor"].append(floor_once(dc, run, i)),
            lambda i: out["floor_net"].append(floor_once(dc, run, 500 + i, net.name)),
            repro]
        if have_testcontainers():
            contenders.append(lambda i: out["tc"].append(testcontainers_once(run, i, 0.05)))
        floor_once(dc, run, -1)  # warm: the image's layers in the page cache
        for i in range(samples):
            for k in range(len(contenders)):  # rotate who goes first
                contenders[(i + k) % len(contenders)](i)
            if have_testcontainers() and i < max(1, samples // 3):  # 1 s polls: fewer
                out["tc_default"].append(testcontainers_once(run, 1000 + i, None))
    finally:
        net.remove()
    return out


def parallel_floor(run: Run, n: int) -> tuple[list[float], float]:
    """n `docker run`s at once, each to its banner, removed once all are up (as a hosts()
    block's are): (each one's time, start to the last banner)."""
    dc = client()
    up: list[Container] = []
    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            futures = [pool.submit(floor_start, dc, run, 100 + i) for i in range(n)]
        each = []
        for f in futures:  # all of them first: every container that came up is removed
            if f.exception() is None:
                spent, c = f.result()
                each.append(spent)
                up.append(c)
        for f in futures:
            f.result()  # the first failure raises here
        return each, max(each)
    finally:
        for c in up:
            c.remove(force=True)


def parallel_ready(run: Run, n: int) -> tuple[list[float], float, float, float]:
    """(each host's ready_s, block start to the last host ready, block entry, its exit)."""
    t0 = time.monotonic()
    with DockerProvider().hosts(run, [f"p{i}" for i in range(n)]) as hosts:
        entered = time.monotonic() - t0
        ready = [h for h in hosts.values() if isinstance(h, DockerHost)]
        t1 = time.monotonic()
    return ([h.ready_s for h in ready], max(h.ready_at for h in ready) - t0, entered,
            time.monotonic() - t1)


# ---- detection and false alarms --------------------------------------------------------------
def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)  # condition poll


def _healthy(history: History, n: int) -> bool:
    return sum(1 for e in history.events() if e.get("ok")) >= n


def _failed_since(history: History, t: float) -> bool:
    return any(e.t > t and not e.get("ok") for e in history.events())


@contextlib.contextmanager
def _watched(run: Run, roles: list[str]) -> Iterator[dict[str, DockerHost]]:
    with DockerProvider().hosts(run, roles) as hosts:
        yield {r: h for r, h in hosts.items() if isinstance(h, DockerHost)}


def detection_latencies(run: Run, cuts: int, interval: float) -> list[float]:
    out = []
    with _watched(run, ["watched"]) as hosts:
        host = hosts["watched"]
        for _ in range(cuts):
            history = History()
            with Heartbeat(history, host.name, host.address, run.key.private_path,
                           interval_s=interval):
                _wait(partial(_healthy, history, 4), 15, "no healthy baseline")
                host.run(CUT, timeout=10)
                cut_at = history.now()
                _wait(partial(_failed_since, history, cut_at), 15, "the cut was not seen")
                first_miss = min(e.t for e in history.events()
                                 if e.t > cut_at and not e.get("ok"))
                out.append(first_miss - cut_at)
                host.run(HEAL, timeout=10)
    return out


def handshake_rtt(address: str) -> float:
    """A handshake of our own beside the heartbeat: the kernel's RTT sample of it (TCP_INFO's
    tcpi_rtt, SYN to SYN-ACK), which no scheduling delay of this thread inflates; -1 when
    the connect failed."""
    try:
        with socket.create_connection((address, 22), timeout=2) as s:
            info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except OSError:
        return -1.0
    return int.from_bytes(info[68:72], sys.byteorder) / 1e6  # struct tcp_info: tcpi_rtt, us


def flood_false_alarms(run: Run, streams: int, seconds: float, interval: float
                       ) -> dict[str, float]:
    with _watched(run, ["target", "client"]) as hosts:
        target, client_ = hosts["target"], hosts["client"]
        history = History()
        beat = Heartbeat(history, target.name, target.address, run.key.private_path,
                         interval_s=interval)
        slowest = 0.0
        with beat:
            _wait(partial(_healthy, history, 4), 15, "no healthy baseline")
            flood = SshFlood(client=client_, target=target, streams=streams, history=history)
            with injected(flood, history) as applied:
                began = history.now()
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    slowest = max(slowest, handshake_rtt(target.address))
                    flood.sample()
                    time.sleep(0.25)  # sampling cadence
                ended = history.now()
        during = [e for e in history.events() if e.kind == "probe" and began <= e.t <= ended]
        tcp, ssh = leg(during, "tcp"), leg(during, "ssh")
        return {"streams_up": float(applied.measured.get("streams_up", 0)),
                "tcp_samples": len(tcp), "tcp_failed": sum(not e.get("ok") for e in tcp),
                "ssh_samples": len(ssh), "ssh_failed": sum(not e.get("ok") for e in ssh),
                "slowest_handshake_s": slowest, "tcp_timeout_s": beat.tcp_timeout_s}


# ---- the report ------------------------------------------------------------------------------
def row(name: str, xs: list[float], floor: float | None, lo: float, hi: float
        ) -> list[object]:
    p50 = statistics.median(xs)
    ratio = f"{p50 / floor:.2f}x" if floor else ""
    return [name, len(xs), f"{p50:.3f}", f"{pct(xs, 0.95):.3f}", f"{max(xs):.3f}", ratio,
            f"{lo:.2f} / {hi:.2f}"]


HEADERS = ["docker backend", "n", "p50 s", "p95 s", "max s", "p50 / floor", "load start / end"]
# the ratio of the parallel rows is to the parallel floor (N docker runs at once, the last)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--parallel-rounds", type=int, default=2)
    ap.add_argument("--cuts", type=int, default=10)
    ap.add_argument("--interval", type=float, default=0.25)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--flood-s", type=float, default=10.0)
    ap.add_argument("--only", default=",".join(PARTS), help=f"a subset of {','.join(PARTS)}")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    reports = tempfile.TemporaryDirectory(prefix="bench-reports-")
    run = start_run(Path(reports.name))
    rows: list[list[object]] = []
    notes: list[str] = []

    def show(r: list[object]) -> None:
        rows.append(r)
        print(tabulate([r], tablefmt="plain"), flush=True)

    try:
        floor = None
        if "ready" in parts:
            lo = load()
            got = ready_side_by_side(run, args.samples)
            hi = load()
            floor = statistics.median(got["floor"])
            show(row("floor: docker run -> sshd banner", got["floor"], floor, lo, hi))
            show(row("docker run on a user-defined network -> banner", got["floor_net"], floor,
                     lo, hi))
            if got["tc"]:
                show(row("testcontainers start, log wait (poll 0.05 s)", got["tc"], floor, lo,
                         hi))
                show(row("testcontainers start, log wait (default poll 1 s)",
                         got["tc_default"], floor, lo, hi))
            else:
                notes.append("testcontainers is not installed: pip install -e '.[dev]'")
            show(row("repro ready: create -> login accepted", got["repro"], floor, lo, hi))
            show(row("repro hosts() entry, 1 host (network incl.)", got["repro_entry"], floor,
                     lo, hi))
            show(row("repro hosts() exit, 1 host (logs kept, removed)", got["repro_exit"],
                     None, lo, hi))
        if "parallel" in parts:
            lo = load()
            f_last, each, last, entered, left = [], [], [], [], []
            for r in range(args.parallel_rounds):  # who goes first alternates
                for side in ((0, 1) if r % 2 == 0 else (1, 0)):
                    if side == 0:
                        f_last.append(parallel_floor(run, args.parallel)[1])
                    else:
                        e, la, en, ex = parallel_ready(run, args.parallel)
                        each += e
                        last.append(la)
                        entered.append(en)
                        left.append(ex)
            hi = load()
            pfloor = statistics.median(f_last)
            n = args.parallel
            show(row(f"floor {n} in parallel: start -> last banner", f_last, pfloor, lo, hi))
            show(row(f"repro {n} in parallel: each host's ready", each, pfloor, lo, hi))
            show(row(f"repro {n} in parallel: block start -> last ready", last, pfloor, lo, hi))
            show(row(f"repro {n} in parallel: hosts() entry", entered, pfloor, lo, hi))
            show(row(f"repro {n} in parallel: hosts() exit (logs kept, removed)", left, None,
                     lo, hi))
        if "detection" in parts:
            lo = load()
            detect = detection_latencies(run, args.cuts, args.interval)
            show(row(f"detection: cut -> first failed sample ({args.interval} s)", detect,
                     None, lo, load()))
        if "flood" in parts:
            lo = load()
            f = flood_false_alarms(run, args.streams, args.flood_s, args.interval)
            notes.append(
                f"flood: {f['streams_up']:.0f}/{args.streams} streams up for {args.flood_s:.0f} s;"
                f" heartbeat tcp leg {f['tcp_failed']:.0f} failed of {f['tcp_samples']:.0f}"
                f" (timeout {f['tcp_timeout_s']:.2f} s), ssh leg {f['ssh_failed']:.0f} failed"
                f" of {f['ssh_samples']:.0f}; slowest handshake {f['slowest_handshake_s']:.4f} s;"
                f" load {lo:.2f} / {load():.2f}")
            print(notes[-1], flush=True)
    finally:
        run.close()
        reports.cleanup()
    print()
    print(tabulate(rows, headers=HEADERS, tablefmt="github"))
    for n in notes:
        print(n)


if __name__ == "__main__":
    main()
