"""Heartbeat: is the host reachable, and is it still the same boot?

Model: a thread on the runner (outside the host, outside the flood's
connections) that every `interval_s` does two things against the target:

  tcp   connect to port 22 (timeout 2 intervals, at least 0.5 s): the kernel
        completes the handshake even when sshd is busy, so this is the fast
        and false-alarm-free network liveness check
  ssh   one round trip on a long-lived ssh session: read the boot id
        (timeout 4 intervals, at least 1.5 s: a loaded sshd is slow, not gone)

and appends one `probe` event per round: tcp_ok, ssh_ok, ok (= both),
rtt_s of the ssh round trip, boot_id. A failed connect ends the round at
once (detection latency is about the connect timeout). A round that takes
longer than the interval is followed immediately by the next; each check has
its own timeout so a dead network shows as failed samples, never as a hung
observer. A boot
id that changes is a reboot, even if the host answers again (the blind spot
of the first postmortem).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from repro.history import History
from repro.hosts.sshlogin import connect_kwargs

BOOT_ID = "/proc/sys/kernel/random/boot_id"


@dataclass
class Heartbeat:
    history: History
    host_name: str
    address: str
    key_path: Path
    interval_s: float = 0.25
    tcp_timeout_s: float = 0.0  # 0: derived from the interval
    ssh_timeout_s: float = 0.0
    port: int = 22
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _client: paramiko.SSHClient | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tcp_timeout_s = self.tcp_timeout_s or max(0.5, 2 * self.interval_s)
        self.ssh_timeout_s = self.ssh_timeout_s or max(1.5, 4 * self.interval_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{self.host_name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.tcp_timeout_s + self.ssh_timeout_s * 3 + 5)
        self._close()

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        next_round = time.monotonic()
        while not self._stop.is_set():
            self.sample()
            next_round += self.interval_s
            delay = next_round - time.monotonic()
            if delay < 0:
                next_round = time.monotonic()
            elif self._stop.wait(delay):
                break

    def sample(self) -> None:
        tcp_ok = self._tcp()
        if tcp_ok:
            ssh_ok, rtt, boot = self._ssh()
        else:
            self._close()  # the session rides the same dead path
            ssh_ok, rtt, boot = False, None, None
        self.history.append("probe", self.host_name, tcp_ok=tcp_ok, ssh_ok=ssh_ok,
                            ok=tcp_ok and ssh_ok, rtt_s=round(rtt, 4) if rtt else None,
                            boot_id=boot)

    def _tcp(self) -> bool:
        try:
            with socket.create_connection((self.address, self.port), timeout=self.tcp_timeout_s):
                return True
        except OSError:
            return False

    def _ssh(self) -> tuple[bool, float | None, str | None]:
        started = time.monotonic()
        try:
            client = self._session()
            _, stdout, _ = client.exec_command(f"cat {BOOT_ID}", timeout=self.ssh_timeout_s)
            boot = stdout.read().decode().strip()
            if stdout.channel.recv_exit_status() != 0 or not boot:
                raise paramiko.SSHException("no boot id")
            return True, time.monotonic() - started, boot
        except (OSError, paramiko.SSHException, EOFError):
            self._close()  # the next round logs in afresh
            return False, None, None

    def _session(self) -> paramiko.SSHClient:
        if self._client is None:
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            t = self.ssh_timeout_s
            kwargs = connect_kwargs(self.key_path) | {"timeout": t, "banner_timeout": t,
                                                      "auth_timeout": t}
            client.connect(self.address, port=self.port, username="root",
                           **kwargs)  # type: ignore[arg-type]
            self._client = client
        return self._client

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
