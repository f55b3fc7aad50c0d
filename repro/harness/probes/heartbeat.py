"""Heartbeat: is the host reachable, and is it still the same boot?

Model: two threads on the runner (outside the host, outside the flood's
connections), each with its own cadence of `interval_s`, so that a slow leg
never delays the other:

  tcp leg  connect to port 22 (timeout 2 intervals, at least 0.5 s; a Docker host
           of this process: LOCAL_TCP_TIMEOUT_S). The kernel completes the handshake
           even when sshd is busy: this is the fast, false-alarm-free check that the
           host is on the network. A Docker host's kernel is the runner's own: its
           handshake (the kernel's RTT of SYN to SYN-ACK) took at most 0.2 ms beside
           a 20-stream flood for 60 s, load up to 8.8, and the timeout is a poll on
           the socket, which a starved observer thread does not fail. A cut shows
           after the phase of the round plus the timeout: p50 0.62-0.64 s at 0.25 s
           with 0.5 s, 0.22-0.25 s with 0.1 s (benchmarks/README.md). A QEMU guest
           under TCG stalls for hundreds of ms: it keeps the wide bound.
  ssh leg  one round trip on a long-lived ssh session reading the boot id
           (timeout 4 intervals, at least 1.5 s: a loaded sshd is slow, not
           gone). A changed boot id is a reboot, even if the host answers
           again: the blind spot of the first postmortem. The round trip runs
           on a worker thread and the round waits for it at most the timeout:
           paramiko waits for a channel request's reply with no bound, so a
           session that froze there would otherwise stop the leg's samples.
           A call still unanswered is waited on again by the next round (it
           is the same frozen session), never abandoned for a fresh login or
           a second channel (rounds that gave up on their channels left them
           open, and at sshd's MaxSessions every later round was refused).

Each round appends one `probe` event with `leg` ("tcp" or "ssh"), `ok`, and
for the ssh leg `ssh_ok`, `rtt_s`, `boot_id` (the tcp leg: `tcp_ok`). Every
check has a timeout, so a dead network shows as failed samples, never as a
hung observer. The threads run at a raised priority (nice -10 where allowed):
the observer must not be starved by the load it watches.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as RoundTimeout
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from repro.harness.history import Event, History
from repro.harness.hosts.docker import on_this_kernel
from repro.harness.hosts.sshlogin import connect_kwargs

BOOT_ID = "/proc/sys/kernel/random/boot_id"
LOCAL_TCP_TIMEOUT_S = 0.1  # 500x the slowest handshake measured on a Docker host
# A round trip waits on its session without a bound; on a connection the host forgot (it
# rebooted) nothing would ever arrive: the next keepalive draws the RST that ends it.
KEEPALIVE_S = 1


@dataclass
class Heartbeat:
    history: History
    host_name: str
    address: str
    key_path: Path
    interval_s: float = 0.25
    tcp_timeout_s: float = 0.0  # 0: derived from the interval and the host's kind
    ssh_timeout_s: float = 0.0
    port: int = 22
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _client: paramiko.SSHClient | None = field(default=None, init=False)
    _worker: ThreadPoolExecutor = field(init=False)
    _call: Future[tuple[str, float]] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not self.tcp_timeout_s:
            self.tcp_timeout_s = (LOCAL_TCP_TIMEOUT_S if on_this_kernel(self.address)
                                  else max(0.5, 2 * self.interval_s))
        self.ssh_timeout_s = self.ssh_timeout_s or max(1.5, 4 * self.interval_s)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"heartbeat-ssh-{self.host_name}")

    def start(self) -> None:
        for leg, round_ in (("tcp", self.tcp_round), ("ssh", self.ssh_round)):
            t = threading.Thread(target=self._loop, args=(round_,), daemon=True,
                                 name=f"heartbeat-{leg}-{self.host_name}")
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.ssh_timeout_s * 3 + 5)
        self._close()  # also ends a round trip still waiting on a frozen session
        self._worker.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self, round_: Callable[[], None]) -> None:
        with contextlib.suppress(OSError):  # nice is per thread on Linux; needs root
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
        next_round = time.monotonic()
        while not self._stop.is_set():
            round_()
            next_round += self.interval_s
            delay = next_round - time.monotonic()
            if delay < 0:
                next_round = time.monotonic()  # a slow round: the next one starts now
            elif self._stop.wait(delay):
                break

    def tcp_round(self) -> None:
        try:
            with socket.create_connection((self.address, self.port), timeout=self.tcp_timeout_s):
                ok = True
        except OSError:
            ok = False
        self.history.append("probe", self.host_name, leg="tcp", ok=ok, tcp_ok=ok)

    def ssh_round(self) -> None:
        if self._call is None:
            self._call = self._worker.submit(self._boot_id_round_trip)
        try:
            boot, rtt = self._call.result(timeout=self.ssh_timeout_s)
        except RoundTimeout:
            boot = ""  # unanswered: the next round waits on the same call
        except (OSError, paramiko.SSHException, EOFError):
            self._call = None
            transport = self._client.get_transport() if self._client else None
            if transport is None or not transport.is_active():
                self._close()  # the next round logs in afresh
            boot = ""
        else:
            self._call = None
        if not boot:
            self.history.append("probe", self.host_name, leg="ssh", ok=False, ssh_ok=False,
                                rtt_s=None, boot_id=None)
            return
        self.history.append("probe", self.host_name, leg="ssh", ok=True, ssh_ok=True,
                            rtt_s=round(rtt, 4), boot_id=boot)

    def _boot_id_round_trip(self) -> tuple[str, float]:
        """One exec on the long-lived session, waited for without a bound (the round waits
        at most ssh_timeout_s; stop() ends a wait on a session that never answers). Its
        channel is closed whatever happens: a channel given up on while opening would be
        confirmed later and stay open, and sshd refuses a connection's 11th session."""
        started = time.monotonic()
        transport = self._session().get_transport()
        if transport is None:
            raise paramiko.SSHException("not connected")
        chan = transport.open_session()
        try:
            chan.exec_command(f"cat {BOOT_ID}")
            boot = chan.makefile("rb").read().decode().strip()
            if chan.recv_exit_status() != 0 or not boot:
                raise paramiko.SSHException("no boot id")
        finally:
            chan.close()
        return boot, time.monotonic() - started

    def _session(self) -> paramiko.SSHClient:
        if self._client is None:
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            t = self.ssh_timeout_s
            kwargs = connect_kwargs(self.key_path) | {"timeout": t, "banner_timeout": t,
                                                      "auth_timeout": t}
            client.connect(self.address, port=self.port, username="root",
                           **kwargs)  # type: ignore[arg-type]
            transport = client.get_transport()
            if transport is not None:
                transport.set_keepalive(KEEPALIVE_S)
            self._client = client
        return self._client

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


BASELINE_SAMPLES = 4
BASELINE_TIMEOUT_S = 15.0


def wait_baseline(history: History, host: str, samples: int = BASELINE_SAMPLES,
                  timeout: float = BASELINE_TIMEOUT_S) -> bool:
    """Whether `samples` healthy probe samples of `host` reached the history within `timeout`
    s: the baseline a scenario waits for before it injects its fault."""
    def healthy() -> bool:
        return sum(1 for e in history.events() if e.kind == "probe" and e.host == host
                   and e.get("ok")) >= samples
    deadline = time.monotonic() + timeout
    while not healthy():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)  # condition poll
    return True


def leg(samples: list[Event], name: str) -> list[Event]:
    """The samples of one leg ("tcp" or "ssh")."""
    return [e for e in samples if e.get("leg") == name]
