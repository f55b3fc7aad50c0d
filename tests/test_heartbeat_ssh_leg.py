"""The heartbeat's ssh leg against a real ssh server (paramiko's, on loopback) whose
session freezes where paramiko waits without a bound: the reply to a channel request.

The server answers `cat boot_id` until the test freezes it; from then on it holds every
exec request unanswered (as a stopped sshd does) until thawed. The leg must go on
sampling at its timeout's cadence, every sample failed, and answer again on the same
session once thawed: the frozen session is what it watches, never a fresh login.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from repro.harness.checks import longest_silence
from repro.harness.history import Event, History
from repro.harness.probes.heartbeat import Heartbeat, leg

BOOT = "0f0e0d0c-boot"


class FreezableSshd(paramiko.ServerInterface):
    """Accepts any public key; an exec request waits while `frozen` is set."""

    def __init__(self) -> None:
        self.frozen = threading.Event()
        self.thawed = threading.Event()
        self.logins = 0

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self.logins += 1
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        if self.frozen.is_set():
            self.thawed.wait(30)  # blocks this transport's thread: the session is frozen
        threading.Thread(target=self._answer, args=(channel,), daemon=True).start()
        return True

    @staticmethod
    def _answer(channel: paramiko.Channel) -> None:
        channel.sendall(f"{BOOT}\n".encode())
        channel.send_exit_status(0)
        channel.close()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[FreezableSshd, int, Path]]:
    key = paramiko.RSAKey.generate(2048)
    key_path = tmp_path / "id_rsa"
    key.write_private_key_file(str(key_path))
    server = FreezableSshd()
    listener = socket.create_server(("127.0.0.1", 0))
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            t.add_server_key(key)
            t.start_server(event=threading.Event(), server=server)  # returns at once
            transports.append(t)

    threading.Thread(target=serve, daemon=True).start()
    yield server, listener.getsockname()[1], key_path
    server.thawed.set()
    listener.close()
    for t in transports:
        t.close()


def _ssh(history: History) -> list[Event]:
    return leg(history.events(), "ssh")


def _wait(cond: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_a_session_frozen_at_its_channel_request_keeps_the_leg_sampling(
        sshd: tuple[FreezableSshd, int, Path]) -> None:
    server, port, key_path = sshd
    history = History()
    beat = Heartbeat(history, "h", "127.0.0.1", key_path, interval_s=0.1, ssh_timeout_s=0.4,
                     port=port)
    with beat:
        assert _wait(lambda: sum(e.get("ok") for e in _ssh(history)) >= 3, 20), _ssh(history)
        server.frozen.set()
        assert _wait(lambda: sum(not e.get("ok") for e in _ssh(history)) >= 4, 10), \
            "the ssh leg stopped sampling while its session was frozen"
        server.thawed.set()
        n = len(_ssh(history))
        assert _wait(lambda: any(e.get("ok") for e in _ssh(history)[n:]), 10)
    samples = _ssh(history)
    failed = [e for e in samples if not e.get("ok")]
    assert all(e.get("boot_id") is None for e in failed)
    assert longest_silence(samples) < 1.0, "a round went unsampled for longer than its timeout"
    assert server.logins == 1, "the leg logged in afresh instead of watching the frozen session"
    assert samples[-1].get("boot_id") == BOOT
