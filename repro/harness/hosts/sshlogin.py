"""SSH logins with the run's key: readiness checks and fabric Connections.

Ready means sshd sent its banner *and* accepted a login, not that port 22 is
open: sshd accepts TCP long before it can authenticate.
"""

from __future__ import annotations

import time
from pathlib import Path

import fabric
import paramiko

from repro.harness.errors import ProvisionError

SSH_CLIENT_CONFIG = """Host *
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


def login_once(address: str, key_path: Path, port: int = 22, timeout: float = 5.0) -> None:
    """One full login and `true`; raises on any failure."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        kwargs = connect_kwargs(key_path) | {"timeout": timeout, "banner_timeout": timeout,
                                             "auth_timeout": timeout}
        client.connect(address, port=port, username="root", **kwargs)  # type: ignore[arg-type]
        _, stdout, _ = client.exec_command("true", timeout=timeout)
        if stdout.channel.recv_exit_status() != 0:
            raise paramiko.SSHException("`true` failed after login")
    finally:
        client.close()


def wait_for_login(address: str, key_path: Path, timeout: float, port: int = 22) -> float:
    """Poll until a login succeeds; returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            login_once(address, key_path, port, timeout=min(5.0, deadline - time.monotonic()))
            return time.monotonic() - started
        except (TimeoutError, OSError, paramiko.SSHException, EOFError) as exc:
            last = exc
            time.sleep(0.05)  # retry cadence of a condition poll
    raise ProvisionError(f"no login to {address}:{port} within {timeout:.0f} s: {last}")
