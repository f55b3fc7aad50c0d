"""SSH logins with the run's key: readiness checks and fabric Connections.

Ready means sshd sent its banner *and* accepted a login, not that port 22 is
open: sshd accepts TCP long before it can authenticate.

The readiness login runs over a socket with TCP_NODELAY and TCP_QUICKACK (re-armed
before every read): a login is a dozen small messages each way, and with Nagle on
one side and delayed ACKs on the other two of its exchanges waited 40 ms each (Linux's
delayed-ACK timer). Measured on a Docker host here: login and `true` 140 ms with
neither, 98 ms with NODELAY, 58 ms with both; the client's own CPU 8 ms throughout.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import fabric
import paramiko

from repro.harness.errors import ProvisionError

# KexAlgorithms: curve25519 ahead of OpenSSH 9's default sntrup761x25519 (post-quantum):
# one guest-to-guest login under TCG 3.0 s -> 0.9 s, and the mtu_wedge flood logs in 20.
# The exchange protects nothing here (throwaway keys, test hosts); a server without it
# still negotiates the rest of the default list ("^": prepended).
SSH_CLIENT_CONFIG = """Host *
    KexAlgorithms ^curve25519-sha256
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    BatchMode yes
    LogLevel ERROR
    ConnectTimeout 10
    ServerAliveInterval 5
    ServerAliveCountMax 3
"""

CONNECT_TIMEOUT_S = 10.0


def connect_kwargs(key_path: Path) -> dict[str, object]:
    return {"key_filename": str(key_path), "look_for_keys": False, "allow_agent": False,
            "timeout": CONNECT_TIMEOUT_S, "banner_timeout": CONNECT_TIMEOUT_S,
            "auth_timeout": CONNECT_TIMEOUT_S}


def connection(address: str, key_path: Path, port: int = 22, user: str = "root"
               ) -> fabric.Connection:
    """A fabric Connection logging in with `key_path` only (host keys not checked)."""
    kwargs = connect_kwargs(key_path)
    kwargs.pop("timeout")  # fabric takes it as connect_timeout
    conn = fabric.Connection(address, user=user, port=port, connect_timeout=CONNECT_TIMEOUT_S,
                             connect_kwargs=kwargs)
    conn.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    return conn


def login_once(address: str, key_path: Path, port: int = 22, timeout: float = 5.0,
               sock: socket.socket | None = None) -> None:
    """One full login and `true`; raises on any failure. `sock`: an already connected
    socket to log in over (closed with the client)."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        kwargs = connect_kwargs(key_path) | {"timeout": timeout, "banner_timeout": timeout,
                                             "auth_timeout": timeout}
        client.connect(address, port=port, username="root", sock=sock,
                       **kwargs)  # type: ignore[arg-type]
        _, stdout, _ = client.exec_command("true", timeout=timeout)
        if stdout.channel.recv_exit_status() != 0:
            raise paramiko.SSHException("`true` failed after login")
    finally:
        client.close()
        if sock is not None:
            sock.close()


LOGIN_RETRY_S = 0.05  # after a login that failed past the TCP connect
TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class QuickAckSocket(socket.socket):
    """A socket that asks the kernel to ACK at once before each read (quick-ack mode does
    not last: the kernel goes back to delayed ACKs when it sees a request/response flow)."""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if TCP_QUICKACK is not None:
            with contextlib.suppress(OSError):
                self.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
        return super().recv(bufsize, flags)


def quick_connection(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection for a login of a few round trips: no Nagle, no delayed ACKs."""
    plain = socket.create_connection((address, port), timeout=timeout)
    sock = QuickAckSocket(plain.family, plain.type, plain.proto, fileno=plain.detach())
    sock.settimeout(timeout)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def wait_for_login(address: str, key_path: Path, timeout: float, port: int = 22,
                   poll_s: float = LOGIN_RETRY_S,
                   login: Callable[[socket.socket, float], None] | None = None) -> float:
    """Poll until a login succeeds; returns the seconds it took.

    Each attempt connects first: while nothing listens (connection refused), the next
    attempt follows after `poll_s` and costs the host nothing but a refused SYN; a connect
    that succeeded carries the login itself (no second connection, no second sshd), and
    a login that failed past it is retried after LOGIN_RETRY_S at least. `login(sock,
    timeout)`: what logs in over the connected socket (default: login_once, which closes
    it); a backend's own keeps the connection as the host's."""
    started = time.monotonic()
    deadline = started + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        left = min(5.0, deadline - time.monotonic())
        try:
            sock = quick_connection(address, port, left)
        except OSError as exc:  # refused, unreachable, timed out: nothing to log in to yet
            last = exc
            time.sleep(poll_s)  # retry cadence of a condition poll
            continue
        try:
            if login is None:
                login_once(address, key_path, port, timeout=left, sock=sock)
            else:
                login(sock, left)
            return time.monotonic() - started
        except (TimeoutError, OSError, paramiko.SSHException, EOFError) as exc:
            last = exc
            time.sleep(max(poll_s, LOGIN_RETRY_S))  # retry cadence of a condition poll
    raise ProvisionError(f"no login to {address}:{port} within {timeout:.0f} s: {last}")
