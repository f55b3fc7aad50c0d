"""The ssh-based host: what QEMU guests, EC2 instances and existing machines share.

Model: a host reached over SSH has an `SshEndpoint` (user, host, port) and an
`SshAuth` (a key file, or the ssh agent and the default keys; how the host's
key is checked). `SshCommander` holds one paramiko Transport per host, opened
on first use and reopened when it died (a guest that panicked and rebooted
comes back with the same address and host key). Each command is its own
channel, wrapped in `timeout -k 2 T sh -c ...` so it also stops *on the host*
(behind `sudo -n` when the login user is not root: commands are root's); the
runner gives up a few seconds after T and reports exit code None (timed out)
without raising a transport error: a dead host shows as failed commands,
never as a hang. Opening a channel on a transport that died reconnects once:
the command had not started, so trying again is safe. Every connection has a
timeout (CONNECT_S at most).

`SshHostBase` gives the Host protocol's `run`, `put`, `get` and `close` on top
of a commander; a backend adds its fields, `url`, `console` and `ssh`.
"""

from __future__ import annotations

import base64
import contextlib
import select
import shlex
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from repro.harness.errors import HostCommandError
from repro.harness.hosts.base import CommandResult

GRACE_S = 5.0
CONNECT_S = 10.0
TIMED_OUT = (124, 137)  # exit codes of coreutils `timeout` (TERM, then KILL)
FILE_TIMEOUT_S = 60.0   # put / get


def host_key(public_line: str) -> paramiko.PKey:
    """A paramiko key from an OpenSSH public key line (`ssh-ed25519 AAAA... comment`)."""
    kind, b64 = public_line.split()[:2]
    return paramiko.Ed25519Key(data=base64.b64decode(b64)) if kind == "ssh-ed25519" \
        else paramiko.PKey.from_type_string(kind, base64.b64decode(b64))


@dataclass(frozen=True)
class SshEndpoint:
    host: str
    port: int = 22
    user: str = "root"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}:{self.port}"


@dataclass(frozen=True)
class SshAuth:
    """How the runner logs in. `key_path` None: the ssh agent and ~/.ssh/id_* keys.
    Host keys: `host_key` pinned (an image's baked key), else checked against
    `known_hosts` (unknown hosts refused), else against ~/.ssh/known_hosts when
    `user_known_hosts` (a changed key refused, an unknown host accepted and not
    saved), else accepted (machines the run itself just created)."""

    key_path: Path | None = None
    host_key: str | None = None
    known_hosts: Path | None = None
    user_known_hosts: bool = False

    def connect_kwargs(self, timeout: float = CONNECT_S) -> dict[str, Any]:
        if self.key_path is not None:
            keys: dict[str, Any] = {"key_filename": str(self.key_path), "look_for_keys": False,
                                    "allow_agent": False}
        else:
            keys = {"look_for_keys": True, "allow_agent": True}
        return keys | {"timeout": timeout, "banner_timeout": timeout, "auth_timeout": timeout}

    def client(self, endpoint: SshEndpoint) -> paramiko.SSHClient:
        """An SSHClient set up to check (or accept) the endpoint's host key."""
        client = paramiko.SSHClient()
        if self.host_key is not None:
            known = host_key(self.host_key)
            name = endpoint.host if endpoint.port == 22 else f"[{endpoint.host}]:{endpoint.port}"
            client.get_host_keys().add(name, known.get_name(), known)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        elif self.known_hosts is not None:
            client.load_host_keys(str(self.known_hosts))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            if self.user_known_hosts:
                user_file = Path("~/.ssh/known_hosts").expanduser()
                with contextlib.suppress(OSError, paramiko.SSHException):  # unreadable: none
                    client.get_host_keys().load(str(user_file))
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        return client


def wrap(command: str, timeout: float, env: Mapping[str, str] | None = None,
         sudo: bool = False) -> str:
    """The remote command line: the environment exported, bounded by `timeout` on the host,
    as root through `sudo -n` when asked (never prompts: a password prompt is a failure)."""
    prefix = "".join(f"export {k}={shlex.quote(v)}; " for k, v in (env or {}).items())
    wrapped = f"timeout -k 2 {timeout:.3f} sh -c {shlex.quote(prefix + command)}"
    return f"sudo -n {wrapped}" if sudo else wrapped


class SshCommander:
    """Commands on one host over one long-lived transport (see the module's model)."""

    def __init__(self, endpoint: SshEndpoint, auth: SshAuth, connect_s: float = CONNECT_S):
        self.endpoint = endpoint
        self.auth = auth
        self.connect_s = connect_s
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()

    @property
    def sudo(self) -> bool:
        return self.endpoint.user != "root"

    def connect(self, timeout: float | None = None, sock: socket.socket | None = None
                ) -> paramiko.Transport:
        """The live transport, (re)opened within `timeout` (at most connect_s), over `sock`
        when given (an already connected socket: a readiness poll's); raises OSError,
        EOFError or paramiko.SSHException when the host cannot be reached."""
        with self._lock:
            t = self._client.get_transport() if self._client else None
            if t is not None and t.is_active():
                return t
            self._close_locked()
            client = self.auth.client(self.endpoint)
            limit = min(self.connect_s, max(timeout or self.connect_s, 1.0))
            try:
                client.connect(self.endpoint.host, port=self.endpoint.port, sock=sock,
                               username=self.endpoint.user, **self.auth.connect_kwargs(limit))
            except BaseException:
                client.close()
                raise
            transport = client.get_transport()
            assert transport is not None
            transport.set_keepalive(5)
            self._client = client
            return transport

    def peer_address(self) -> str:
        """The address the connection reached (a name in the endpoint resolved)."""
        return str(self.connect().getpeername()[0])

    def execute(self, command: str, timeout: float, env: Mapping[str, str] | None = None,
                stdin: bytes | None = None, root: bool = True
                ) -> tuple[int | None, bytes, bytes]:
        """(exit code or None if timed out / unreachable, stdout, stderr). `root` False runs
        as the login user (no sudo)."""
        wrapped = wrap(command, timeout, env, sudo=root and self.sudo)
        started = time.monotonic()
        deadline = started + timeout + GRACE_S
        chan = None
        for attempt in (1, 2):  # a host that rebooted left a dead transport: reconnect once
            try:
                # a host busy with a flood can take long to open a channel: up to the budget
                chan = self.connect(timeout).open_session(timeout=max(CONNECT_S, timeout))
                break
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self.close()
                if attempt == 2 or time.monotonic() >= deadline - GRACE_S:
                    return None, b"", f"ssh to {self.endpoint}: {exc}".encode()
        assert chan is not None
        out, err = bytearray(), bytearray()
        try:
            code = _exchange(chan, wrapped, stdin, deadline, out, err)
            if code in TIMED_OUT and time.monotonic() - started >= timeout:
                code = None
            return code, bytes(out), bytes(err)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            return None, bytes(out), bytes(err) + f"\nssh: {exc}".encode()
        finally:
            chan.close()

    def _close_locked(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        with self._lock:
            self._close_locked()


def _exchange(chan: paramiko.Channel, command: str, stdin: bytes | None, deadline: float,
              out: bytearray, err: bytearray) -> int | None:
    """Run `command` on an open channel: stdin in, stdout/stderr into `out`/`err`, until it
    exits (its code) or the deadline passes (None: gave up waiting, or connection lost).
    paramiko waits for the reply to the exec request without a bound (a frozen sshd never
    sends it): a timer closes the channel at the deadline, which ends that wait."""
    fired = threading.Event()

    def give_up() -> None:
        fired.set()
        chan.close()

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        chan.exec_command(command)
        if stdin:
            chan.settimeout(max(0.1, deadline - time.monotonic()))  # a full window: bounded
            chan.sendall(stdin)
            chan.settimeout(None)
        chan.shutdown_write()
    except (OSError, paramiko.SSHException):
        if not fired.is_set():
            raise
        err += b"\n(the host never answered the command's request: runner gave up waiting)"
        return None
    finally:
        watchdog.cancel()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            err += b"\n(runner gave up waiting)"
            return None
        select.select([chan], [], [], min(left, 1.0))
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
            code: int = chan.recv_exit_status()
            return code
        if chan.closed and not chan.exit_status_ready():
            err += b"\n(connection lost)"
            return None


class SshHostBase:
    """run / put / get / close of a Host reached over SSH. A subclass sets `name` and
    implements `_commander()`; `_put_command` may record what a put changes."""

    name: str
    _ssh: SshCommander | None

    def _commander(self) -> SshCommander:
        raise NotImplementedError

    def run(self, command: str, *, timeout: float, check: bool = True,
            env: Mapping[str, str] | None = None, stdin: bytes | None = None) -> CommandResult:
        started = time.monotonic()
        code, out, err = self._commander().execute(command, timeout, env, stdin)
        res = CommandResult(self.name, command, code, out.decode(errors="replace"),
                            err.decode(errors="replace"), time.monotonic() - started)
        if check and not res.ok:
            raise HostCommandError(self.name, command, code, res.stdout + res.stderr)
        return res

    def _put_command(self, remote: str, mode: int) -> str:
        q = shlex.quote(remote)
        return (f"mkdir -p \"$(dirname {q})\" && cat > {q}.part && chmod {mode:o} {q}.part "
                f"&& mv {q}.part {q}")

    def put(self, data: bytes | Path, remote: str, mode: int = 0o644) -> None:
        payload = data.read_bytes() if isinstance(data, Path) else data
        self.run(self._put_command(remote, mode), timeout=FILE_TIMEOUT_S, stdin=payload)

    def get(self, remote: str, local: Path) -> None:
        code, out, err = self._commander().execute(f"cat {shlex.quote(remote)}",
                                                   FILE_TIMEOUT_S)
        if code != 0:
            raise HostCommandError(self.name, f"get {remote}", code, err.decode(errors="replace"))
        local.write_bytes(out)

    def close(self) -> None:
        if self._ssh is not None:
            self._ssh.close()
