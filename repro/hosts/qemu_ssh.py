"""Commands on a guest over one long-lived SSH connection (there is no `docker exec`).

Model: one paramiko Transport per host, opened on first use and reopened when
it died (a guest that panicked and rebooted comes back with the same address
and host key). Each command is its own channel, wrapped in the guest's
`timeout -k 2 T sh -c ...` so it also stops *on the guest*; the runner gives up
a few seconds after T and reports exit code None (timed out) without raising
a transport error: a dead guest shows as failed commands, never as a hang.
The guest's host key is the image's baked key, pinned on every connection.
Opening a channel on a transport that died (the guest rebooted) reconnects once:
the command had not started, so trying again is safe.
"""

from __future__ import annotations

import base64
import select
import shlex
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import paramiko

from repro.hosts.sshlogin import connect_kwargs

GRACE_S = 5.0
CONNECT_S = 10.0
TIMED_OUT = (124, 137)


def host_key(public_line: str) -> paramiko.PKey:
    kind, b64 = public_line.split()[:2]
    return paramiko.Ed25519Key(data=base64.b64decode(b64)) if kind == "ssh-ed25519" \
        else paramiko.PKey.from_type_string(kind, base64.b64decode(b64))


class SshCommander:
    def __init__(self, address: str, key_path: Path, known_host_key: str | None = None):
        self.address = address
        self.key_path = key_path
        self.known = host_key(known_host_key) if known_host_key else None
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()

    def _transport(self, timeout: float) -> paramiko.Transport:
        with self._lock:
            t = self._client.get_transport() if self._client else None
            if t is not None and t.is_active():
                return t
            self.close_locked()
            client = paramiko.SSHClient()
            if self.known is not None:
                client.get_host_keys().add(self.address, self.known.get_name(), self.known)
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
            else:
                client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            limit = min(CONNECT_S, max(timeout, 1.0))
            kwargs = connect_kwargs(self.key_path) | {"timeout": limit, "banner_timeout": limit,
                                                      "auth_timeout": limit}
            client.connect(self.address, username="root", **kwargs)  # type: ignore[arg-type]
            transport = client.get_transport()
            assert transport is not None
            transport.set_keepalive(5)
            self._client = client
            return transport

    def execute(self, command: str, timeout: float, env: Mapping[str, str] | None = None,
                stdin: bytes | None = None) -> tuple[int | None, bytes, bytes]:
        """(exit code or None if timed out / unreachable, stdout, stderr)."""
        prefix = "".join(f"export {k}={shlex.quote(v)}; " for k, v in (env or {}).items())
        wrapped = f"timeout -k 2 {timeout:.3f} sh -c {shlex.quote(prefix + command)}"
        started = time.monotonic()
        deadline = started + timeout + GRACE_S
        out, err = bytearray(), bytearray()
        chan = None
        for attempt in (1, 2):  # a guest that rebooted left a dead transport: reconnect once
            try:
                # a guest busy with a flood can take long to open a channel: up to the budget
                chan = self._transport(timeout).open_session(timeout=max(CONNECT_S, timeout))
                break
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self.close()
                if attempt == 2 or time.monotonic() >= deadline - GRACE_S:
                    return None, b"", f"ssh to {self.address}: {exc}".encode()
        assert chan is not None
        try:
            chan.exec_command(wrapped)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, bytes(out), bytes(err) + b"\n(runner gave up waiting)"
                select.select([chan], [], [], min(left, 1.0))
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if chan.exit_status_ready() and not chan.recv_ready() \
                        and not chan.recv_stderr_ready():
                    break
                if chan.closed and not chan.exit_status_ready():
                    return None, bytes(out), bytes(err) + b"\n(connection lost)"
            code: int | None = chan.recv_exit_status()
            if code in TIMED_OUT and time.monotonic() - started >= timeout:
                code = None
            return code, bytes(out), bytes(err)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            return None, bytes(out), bytes(err) + f"\nssh: {exc}".encode()
        finally:
            chan.close()

    def close_locked(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()
