"""ssh:// hosts: existing machines (a staging box, a fleet host), borrowed, never removed.

Model: the configuration file's `[hosts]` table maps each role to a machine
(docs/ssh.md):

    [hosts]
    key = "~/.ssh/id_ed25519"   # optional: else the ssh agent and ~/.ssh/id_*
    known_hosts = "known_hosts" # optional: else ~/.ssh/known_hosts (a changed key is refused)
    connect_timeout_s = 10      # optional
    lease_s = 60                # optional: the dead man's switch on each machine
    [hosts.roles]
    target = "root@10.1.2.3:22" # [ssh://][user@]host[:port]; user root, port 22 by default
    client = "deploy@10.1.2.4"  # a user other than root needs passwordless sudo

`validate_hosts_table` checks it (one ConfigError line naming the file and the
key); `configure` (the plugin, once the file is read) makes it the table
`SshProvider` uses. `SshProvider.hosts(run, roles)` connects to each role's
machine with those credentials (one line on failure: `cannot reach
user@host:port: why`), claims it for the run and installs the run's key
(repro.harness.hosts.ssh_remote: directory, baseline, watchdog), keeps each lease
renewed while the context is open, and at exit, however it exits, runs the
restore script on each machine. A machine the run cut off the network is
waited for: its watchdog restores it once the lease runs out, then the
runner's restore finds it clean. Machines are noted in a ledger on the runner
(LEDGER/<run id>.json) before anything is changed on them and dropped from it
once restored; `reap()` (repro cleanup, a run's start) restores the machines
of dead runs still listed there.

Commands run as root (`sudo -n` for another user) over the runner's own
credentials; `ssh()` and logins from one host of the run to another use the
run's key, as on every backend.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko

from repro.harness import names
from repro.harness.errors import ConfigError, ProvisionError
from repro.harness.hosts import ssh_remote as remote
from repro.harness.hosts.base import Host
from repro.harness.hosts.sshhost import CONNECT_S, SshAuth, SshCommander, SshEndpoint, SshHostBase
from repro.harness.hosts.sshlogin import SSH_CLIENT_CONFIG, connection
from repro.harness.run import SCRATCH_ROOT

if TYPE_CHECKING:
    import fabric

    from repro.harness.run import Run

__all__ = ["HostsTable", "SshHost", "SshProvider", "configure", "parse_destination", "reap",
           "validate_hosts_table"]

LEDGER = SCRATCH_ROOT / f"{names.PREFIX}-ssh-hosts"
KEYS = ("key", "known_hosts", "connect_timeout_s", "lease_s", "roles")
ROLE_RE = re.compile(r"[a-z][a-z0-9_]{0,15}")
DEST_RE = re.compile(r"(?:ssh://)?(?:(?P<user>[A-Za-z_][A-Za-z0-9_.-]{0,31})@)?"
                     r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))"
                     r"(?::(?P<port>[0-9]{1,5}))?")
LEASE_RANGE = (10.0, 3600.0)
CONNECT_RANGE = (1.0, 120.0)
SETUP_TIMEOUT_S = 30.0
RESTORE_TIMEOUT_S = 30.0
ATTEMPT_S = 15.0         # one restore attempt at the end of a run
WATCHDOG_GRACE_S = 30.0  # beyond the lease: the watchdog's own cadence and a slow machine
RETRY_S = 1.0


@dataclass(frozen=True)
class HostsTable:
    """The parsed [hosts] table."""

    roles: dict[str, SshEndpoint]
    key: Path | None = None
    known_hosts: Path | None = None
    connect_timeout_s: float = CONNECT_S
    lease_s: float = 60.0
    where: str = ""  # the file it came from, for errors

    def auth(self) -> SshAuth:
        return SshAuth(self.key, known_hosts=self.known_hosts,
                       user_known_hosts=self.known_hosts is None)


# ---- the [hosts] table ------------------------------------------------------------------
def parse_destination(text: object, where: str = "", key: str = "") -> SshEndpoint:
    """`[ssh://][user@]host[:port]` (user root, port 22 by default), or one ConfigError."""
    m = DEST_RE.fullmatch(text) if isinstance(text, str) else None
    port = int(m["port"]) if m and m["port"] else 22
    if m is None or not 1 <= port <= 65535 or m["host"].endswith(("-", ".")):
        raise ConfigError(f"not a machine: {text!r} (write user@host:port, e.g. "
                          "\"root@10.1.2.3:22\")", path=where, key=key)
    return SshEndpoint(m["host"].strip("[]"), port, m["user"] or "root")


def _number(table: Mapping[str, Any], name: str, default: float, bounds: tuple[float, float],
            where: str) -> float:
    value = table.get(name, default)
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ConfigError(f"expected a number of seconds from {low:g} to {high:g}, got "
                          f"{value!r}", path=where, key=f"hosts.{name}")
    return float(value)


def _path(value: object, base: Path, where: str, key: str) -> Path:
    from repro.harness.config import read_bytes  # the one reader of files a key names

    if not isinstance(value, str) or not value:
        raise ConfigError(f"expected a path (string), got {value!r}", path=where, key=key)
    try:
        path = (base / Path(value).expanduser()).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"not a usable path {value!r}: {exc}", path=where, key=key) from exc
    read_bytes(path, where=where, key=key, limit=1)
    return path


def _private_key(value: object, base: Path, where: str) -> Path:
    path = _path(value, base, where, "hosts.key")
    try:
        try:
            paramiko.PKey.from_path(path)
        except TypeError as exc:  # an encrypted OpenSSH-format key, as `cryptography` says it
            raise paramiko.PasswordRequiredException(str(exc)) from exc
    except paramiko.PasswordRequiredException:
        raise ConfigError(f"{path} is encrypted: load it into ssh-agent and leave `key` out",
                          path=where, key="hosts.key") from None
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise ConfigError(f"not a private key paramiko can use: {path} ({exc})",
                          path=where, key="hosts.key") from None
    return path


def _roles(value: object, where: str) -> dict[str, SshEndpoint]:
    if not isinstance(value, dict) or not value:
        raise ConfigError("needs a table [hosts.roles] mapping each role to a machine, e.g. "
                          "target = \"root@10.1.2.3:22\"", path=where, key="hosts.roles")
    roles: dict[str, SshEndpoint] = {}
    for role, dest in value.items():
        key = f"hosts.roles.{role}"
        if not ROLE_RE.fullmatch(role):
            raise ConfigError("a role is a lower-case name of at most 16 characters",
                              path=where, key=key)
        endpoint = parse_destination(dest, where, key)
        same = [r for r, e in roles.items() if (e.host, e.port) == (endpoint.host, endpoint.port)]
        if same:
            raise ConfigError(f"{endpoint} is already role {same[0]!r}: each role needs a "
                              "machine of its own", path=where, key=key)
        roles[role] = endpoint
    return roles


def parse_hosts_table(table: Mapping[str, Any], where: str, base: Path) -> HostsTable:
    """The [hosts] table checked and parsed; paths relative to `base` (~ expanded)."""
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown key; known: {', '.join(KEYS)}", path=where,
                          key=f"hosts.{unknown[0]}")
    return HostsTable(
        roles=_roles(table.get("roles"), where),
        key=_private_key(table["key"], base, where) if "key" in table else None,
        known_hosts=(_path(table["known_hosts"], base, where, "hosts.known_hosts")
                     if "known_hosts" in table else None),
        connect_timeout_s=_number(table, "connect_timeout_s", CONNECT_S, CONNECT_RANGE, where),
        lease_s=_number(table, "lease_s", 60.0, LEASE_RANGE, where),
        where=where)


def validate_hosts_table(table: dict[str, Any], where: str, base: Path) -> None:
    """Raise one ConfigError line (naming `where` and the key) unless `table` is a usable
    [hosts] table."""
    parse_hosts_table(table, where, base)


_CONFIGURED: HostsTable | None = None


def configure(table: Mapping[str, Any] | None, base: Path, where: str = "") -> None:
    """Make `table` (the configuration file's [hosts], None: there is none) the machines
    of `--repro-provider ssh` and `provider = "ssh"`."""
    global _CONFIGURED
    _CONFIGURED = None if table is None else parse_hosts_table(
        table, where or str(base), base)


# ---- the runner's ledger of machines a run touched ------------------------------------------
_LEDGER_LOCK = threading.Lock()


@dataclass(frozen=True)
class Touched:
    """What a later cleanup needs to restore one machine of a run."""

    run_id: str
    user: str
    host: str
    port: int
    key: str | None
    known_hosts: str | None
    connect_timeout_s: float
    scratch: str
    key_line: str
    authorized_keys: str

    @property
    def endpoint(self) -> SshEndpoint:
        return SshEndpoint(self.host, self.port, self.user)

    def auth(self) -> SshAuth:
        return SshAuth(Path(self.key) if self.key else None,
                       known_hosts=Path(self.known_hosts) if self.known_hosts else None,
                       user_known_hosts=not self.known_hosts)

    def restore(self) -> str:
        return remote.restore_script(self.scratch, names.short(self.run_id), self.key_line,
                                     self.authorized_keys)


def _ledger_file(run_id: str) -> Path:
    return LEDGER / f"{run_id}.json"


def _ledger_read(path: Path) -> dict[str, Touched]:
    with contextlib.suppress(OSError, ValueError, TypeError):
        return {k: Touched(**v) for k, v in json.loads(path.read_text()).items()}
    return {}


def _ledger_update(run_id: str, endpoint: SshEndpoint, entry: Touched | None) -> None:
    """Add (entry) or drop (None) one machine of a run; the file goes with its last one."""
    with _LEDGER_LOCK:
        path = _ledger_file(run_id)
        entries = _ledger_read(path)
        if entry is None:
            entries.pop(str(endpoint), None)
        else:
            entries[str(endpoint)] = entry
        if not entries:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                LEDGER.rmdir()
            return
        LEDGER.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: asdict(v) for k, v in entries.items()}, indent=1))
        tmp.replace(path)


# ---- hosts --------------------------------------------------------------------------------
def _why(exc: BaseException) -> str:
    """One line for why a connection failed."""
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) and exc.errors:
        return _why(next(iter(exc.errors.values())))
    if isinstance(exc, paramiko.BadHostKeyException):
        return "its host key does not match the known one (known_hosts)"
    if isinstance(exc, paramiko.AuthenticationException):
        return "authentication failed (the key, the agent, or the user)"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass
class SshHost(SshHostBase):
    """An existing machine holding one role of a run (see the module's model)."""

    name: str
    role: str
    endpoint: SshEndpoint
    table: HostsTable
    run_id: str
    run_key: Path            # the run's private key (ssh(), logins between the run's hosts)
    key_line: str            # its public line, comment repro-<short>
    address: str = ""        # the address the runner reached; the others use the same
    home: str = ""
    touched: bool = False    # something was changed on the machine: restore it at the end
    last_lease: float = 0.0  # monotonic time of the last renewal that reached the machine
    borrowed: bool = True
    _ssh: SshCommander | None = field(default=None, repr=False)
    _lease: SshCommander | None = field(default=None, repr=False)  # its own transport

    @property
    def short(self) -> str:
        return names.short(self.run_id)

    @property
    def scratch_dir(self) -> str:
        return remote.scratch_dir(self.short)

    @property
    def ssh_client_options(self) -> str:
        return f"-F {self.scratch_dir}/ssh_config"

    @property
    def ssh_destination(self) -> str:
        return f"-p {self.endpoint.port} {self.endpoint.user}@{self.address}"

    def _commander(self) -> SshCommander:
        if self._ssh is None:
            self._ssh = SshCommander(self.endpoint, self.table.auth(),
                                     self.table.connect_timeout_s)
        return self._ssh

    def _put_command(self, remote_path: str, mode: int) -> str:
        if "\n" in remote_path or not remote_path.startswith("/"):
            raise ValueError(f"not an absolute path on one line: {remote_path!r}")
        record = "" if remote_path.startswith(self.scratch_dir + "/") else \
            remote.record_put(self.scratch_dir, remote_path)
        return record + super()._put_command(remote_path, mode)

    def url(self) -> str:
        return f"ssh://{self.endpoint}"

    def console(self) -> Path | None:
        return None  # an existing machine's console is not the harness's to read

    def ssh(self) -> fabric.Connection:
        return connection(self.address, self.run_key, self.endpoint.port, self.endpoint.user)

    def touched_entry(self) -> Touched:
        t = self.table
        return Touched(self.run_id, self.endpoint.user, self.endpoint.host, self.endpoint.port,
                       str(t.key) if t.key else None,
                       str(t.known_hosts) if t.known_hosts else None, t.connect_timeout_s,
                       self.scratch_dir, self.key_line, f"{self.home}/.ssh/authorized_keys")

    def renew(self, timeout: float) -> None:
        """Touch the lease, on a connection of its own (a renewal that fails must not
        disturb a command in flight)."""
        if self._lease is None:
            self._lease = SshCommander(self.endpoint, self.table.auth(),
                                       self.table.connect_timeout_s)
        t0 = time.monotonic()
        code, _, _ = self._lease.execute(f"touch {self.scratch_dir}/lease", timeout)
        if code == 0:
            self.last_lease = t0

    def close(self) -> None:
        super().close()
        if self._lease is not None:
            self._lease.close()


def _setup(host: SshHost, run: Run) -> None:
    """Reach the machine, claim it, baseline it, install the run's key, arm the watchdog."""
    ssh = host._commander()
    try:
        ssh.connect()
        host.address = ssh.peer_address()
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise ProvisionError(f"cannot reach {host.endpoint}: {_why(exc)}") from None
    _step(host, "sudo -n true" if ssh.sudo else "true", root=False,
          what="commands need root: `sudo -n` refused")
    host.home = _step(host, "printf %s \"$HOME\"", root=False, what="no home directory").strip()
    _ledger_update(host.run_id, host.endpoint, host.touched_entry())
    host.touched = True
    owner = f"run {host.run_id} from {socket.gethostname()} pid {os.getpid()}"
    d = host.scratch_dir
    code, out, err = ssh.execute(remote.claim_script(d, host.short, owner, host.table.lease_s),
                                 SETUP_TIMEOUT_S)
    if code == remote.BUSY_EXIT:
        raise ProvisionError(f"{host.endpoint} is in use by {out.decode().strip()}")
    if code != 0:
        raise ProvisionError(f"{host.endpoint}: could not claim {d}: {_tail(err or out)}")
    host.last_lease = time.monotonic()
    host.put(remote.restore_script(d, host.short, host.key_line,
                                   f"{host.home}/.ssh/authorized_keys").encode(),
             f"{d}/restore.sh", 0o700)
    host.put(remote.watchdog_script(d, host.table.lease_s).encode(), f"{d}/watchdog.sh", 0o700)
    host.put(run.key.private_bytes, f"{d}/id_ed25519", 0o600)
    host.put(_client_config(d).encode(), f"{d}/ssh_config", 0o600)
    created = _step(host, remote.install_key(host.key_line), root=False,
                    what="could not add the run's key to authorized_keys").split()
    flags = " ".join(f"{d}/{w}.created" for w in ("sshdir", "akfile") if w in created)
    if flags:
        _step(host, f"touch {flags}", what="could not note what it created")
    _step(host, remote.start_watchdog(d), what="the watchdog did not start")


def _step(host: SshHost, command: str, what: str, root: bool = True) -> str:
    code, out, err = host._commander().execute(command, SETUP_TIMEOUT_S, root=root)
    if code != 0:
        raise ProvisionError(f"{host.endpoint}: {what}: {_tail(err or out)}")
    return out.decode(errors="replace")


def _tail(raw: bytes) -> str:
    lines = raw.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def _client_config(d: str) -> str:
    """ssh -F: the run's key only; the machine's own ssh configuration is not read."""
    head, _, rest = SSH_CLIENT_CONFIG.partition("\n")  # "Host *", then the shared options
    return f"{head}\n    IdentityFile {d}/id_ed25519\n    IdentitiesOnly yes\n{rest}"


def _restore(host: SshHost, log: Path) -> bool:
    """Run the restore script until it succeeds; a machine that does not answer is tried
    again until its watchdog must have restored it. True: nothing of the run is left."""
    if not host.touched:
        return True
    deadline = max(time.monotonic() + ATTEMPT_S,
                   host.last_lease + host.table.lease_s + WATCHDOG_GRACE_S)
    script = host.touched_entry().restore().encode()
    notes: list[bytes] = []
    while True:
        t0 = time.monotonic()
        code, out, err = host._commander().execute("sh -s", ATTEMPT_S, stdin=script)
        if code is not None or time.monotonic() >= deadline:
            break
        if not notes:
            notes.append(f"{host.endpoint} did not answer ({_tail(err)}); waiting for its "
                         "watchdog, which restores it when the lease runs out\n".encode())
        host.close()  # the next attempt connects afresh instead of waiting on a dead transport
        time.sleep(max(0.0, RETRY_S - (time.monotonic() - t0)))  # retry cadence
    if code == 0 and not out.strip():  # its directory was gone: the machine restored itself
        notes.append(b"nothing left: the machine's watchdog had restored it (the lease ran "
                     b"out while the runner could not reach it)\n")
    with contextlib.suppress(OSError):
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"".join(notes) + out + err)
    if code == 0:
        _ledger_update(host.run_id, host.endpoint, None)
        return True
    print(f"repro: {host.endpoint} not restored ({_tail(err or out)}); `repro cleanup` "
          "retries", file=sys.stderr)
    return False


class _Leases:
    """One thread per machine touching its lease every lease_s/4 while the run holds it."""

    def __init__(self, hosts: Sequence[SshHost], lease_s: float):
        self.every = lease_s / 4
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(h,), daemon=True,
                                         name=f"lease-{h.name}") for h in hosts]

    def _loop(self, host: SshHost) -> None:
        while not self.stop_event.wait(self.every):
            host.renew(timeout=min(self.every, CONNECT_S))

    def __enter__(self) -> _Leases:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=2 * self.every + CONNECT_S)


class SshProvider:
    """Existing machines from the [hosts] table (`configure`d, or given)."""

    name = "ssh"

    def __init__(self, table: HostsTable | None = None):
        table = table or _CONFIGURED
        if table is None:
            raise ConfigError("provider 'ssh' needs a [hosts] table naming a machine for each "
                              "role in the configuration file (--repro-config; docs/ssh.md)",
                              key="hosts")
        self.table = table

    def _host(self, run: Run, role: str) -> SshHost:
        endpoint = self.table.roles.get(role)
        if endpoint is None:
            raise ConfigError(f"no machine for role {role!r}: add {role} = \"user@host:port\" "
                              "to [hosts.roles]", path=self.table.where,
                              key=f"hosts.roles.{role}")
        line = " ".join([*run.key.public_line.split()[:2], f"{names.PREFIX}-{run.short}"])
        return SshHost(run.name(role), role, endpoint, self.table, run.run_id,
                       run.key.private_path, line)

    @contextlib.contextmanager
    def hosts(self, run: Run, roles: Sequence[str]) -> Iterator[dict[str, Host]]:
        hosts = [self._host(run, role) for role in roles]
        logs = run.reports / "hosts"
        try:
            with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
                futures = [pool.submit(_setup, h, run) for h in hosts]
                errors = [f.exception() for f in futures]
            failed = [e for e in errors if e is not None]
            if failed:
                raise failed[0]
            with _Leases(hosts, self.table.lease_s):
                yield {h.role: h for h in hosts}
        finally:
            with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
                list(pool.map(lambda h: _restore(h, logs / f"{h.name}.restore.log"), hosts))
            for h in hosts:
                h.close()


# ---- reaping ------------------------------------------------------------------------------
def reap(all_runs: bool, live_run_ids: set[str]) -> list[str]:
    """Restore the machines of dead runs (of every run: all_runs) still in the ledger; a
    machine that does not answer stays listed for the next cleanup."""
    removed: list[str] = []
    for path in sorted(LEDGER.glob("*.json")) if LEDGER.is_dir() else []:
        for dest, entry in _ledger_read(path).items():
            if not all_runs and entry.run_id in live_run_ids:
                continue
            ssh = SshCommander(entry.endpoint, entry.auth(), entry.connect_timeout_s)
            try:
                code, out, _ = ssh.execute("sh -s", RESTORE_TIMEOUT_S,
                                           stdin=entry.restore().encode())
            finally:
                ssh.close()
            if code == 0:
                _ledger_update(entry.run_id, entry.endpoint, None)
                done = out.decode(errors="replace").strip().splitlines()
                removed.append(f"ssh host {dest} of run {entry.run_id}: "
                               + ("; ".join(done) if done else "nothing left"))
    return removed
