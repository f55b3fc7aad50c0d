"""A real ssh server on loopback (paramiko's) whose sessions can freeze where paramiko
waits without a bound: the reply to a channel's exec request.

It answers every exec with BOOT until `frozen` is set; from then on it holds each exec
request unanswered (as a stopped sshd does) until `thawed`. Any public key logs in.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

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
        # paramiko sends the request's success reply after this returns: an answer sent at once
        # could overtake it (the client then sees its channel closed before the reply), so the
        # answer follows 20 ms later, as a real command's output does
        answer = threading.Timer(0.02, self._answer, args=(channel,))
        answer.daemon = True
        answer.start()
        return True

    @staticmethod
    def _answer(channel: paramiko.Channel) -> None:
        with contextlib.suppress(OSError, EOFError):  # the client already gave up on it
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
