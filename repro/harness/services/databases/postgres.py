"""PostgreSQL targets: a throwaway server from Debian's packages, or a given URI.

Model: `postgres_target(spec, scratch)` yields a `PgTarget` (a URL and, for an
embedded server, its data directory). The spec is either "postgresql" (start
our own server) or a postgresql:// URI (use it; the harness only creates and
drops its own `repro_*` objects there).

The embedded server comes from /usr/lib/postgresql/<newest>/bin. PostgreSQL
refuses to run as root, so when we are root initdb and postgres run as the
`postgres` user (Popen user=/group=), in a data directory it owns under the
run's scratch directory (`/tmp/repro-<short>/repro-pg-<name>`; the scratch
directory is made traversable, not listable, for that user). It listens on
127.0.0.1 at a free port only, with its socket inside the data directory.
Stopping is PostgreSQL's fast shutdown (SIGINT), then immediate (SIGQUIT),
then SIGKILL; the data directory is then deleted: after a pass, a failure or
Ctrl-C (the context manager's finally). `reap()` does the same for servers of
runs that died without their finally: it finds them by their data directory
under /tmp/repro-* and the postmaster.pid PostgreSQL writes there.

Every connection the harness opens goes through `connect()`, which sets a
connect timeout and the statement/lock timeouts the caller asks for.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.harness import procs as _process
from repro.harness.errors import PrerequisiteError, ProvisionError
from repro.harness.names import PREFIX

PG_ROOT = Path("/usr/lib/postgresql")
DATA_DIR_PREFIX = f"{PREFIX}-pg-"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
DATABASE = "repro"


@dataclass(frozen=True)
class PgTarget:
    url: str
    data_dir: Path | None  # None: a server we did not start
    version: str

    @property
    def embedded(self) -> bool:
        return self.data_dir is not None


@dataclass(frozen=True)
class LockSample:
    """Relation-level locks on one table, read from pg_locks at one instant."""

    granted: int
    waiting: int
    waiting_share: int  # waiters asking for ShareLock (CREATE INDEX)
    longest_wait_s: float  # now() - waitstart of the oldest waiter


def find_bin_dir() -> Path:
    """The newest Debian PostgreSQL's bin directory."""
    candidates = sorted((p for p in PG_ROOT.glob("*/bin") if (p / "postgres").is_file()),
                        key=lambda p: _version_key(p.parent.name))
    if not candidates:
        raise PrerequisiteError(f"no PostgreSQL server under {PG_ROOT}/*/bin",
                                "apt-get install postgresql (or run setup/setup.sh)")
    return candidates[-1]


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in name.split(".") if x.isdigit())


def _run_as() -> pwd.struct_passwd | None:
    """The account the server runs as: `postgres` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PrerequisiteError("PostgreSQL refuses to run as root and there is no "
                                "`postgres` user", "apt-get install postgresql") from exc


def _as_user(account: pwd.struct_passwd | None) -> dict[str, Any]:
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _server_env(data_dir: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "HOME": str(data_dir), "PGDATA": str(data_dir)}


def connect(url: str, *, statement_timeout_ms: int, lock_timeout_ms: int = 0,
            autocommit: bool = True, connect_timeout_s: int = 5,
            application_name: str = "repro") -> Any:
    """A psycopg connection with timeouts set for the whole session (0 = none)."""
    import psycopg

    options = f"-c statement_timeout={statement_timeout_ms} -c lock_timeout={lock_timeout_ms}"
    return psycopg.connect(url, autocommit=autocommit, connect_timeout=connect_timeout_s,
                           options=options, application_name=application_name)


def lock_sample(conn: Any, table: str) -> LockSample:
    """Granted and waiting relation locks on `table` (a catalog read; takes no table lock)."""
    row = conn.execute(
        """
        SELECT count(*) FILTER (WHERE granted),
               count(*) FILTER (WHERE NOT granted),
               count(*) FILTER (WHERE NOT granted AND mode = 'ShareLock'),
               coalesce(extract(epoch FROM max(clock_timestamp() - waitstart)), 0)
        FROM pg_locks
        WHERE locktype = 'relation' AND relation = to_regclass(%s)
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """, (table,)).fetchone()
    return LockSample(granted=int(row[0]), waiting=int(row[1]), waiting_share=int(row[2]),
                      longest_wait_s=float(row[3]))


def server_version(url: str) -> str:
    with connect(url, statement_timeout_ms=5000) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])


@contextlib.contextmanager
def postgres_target(spec: str, scratch: Path, name: str = "main",
                    max_connections: int = 200) -> Iterator[PgTarget]:
    """"postgresql" starts an embedded server; a postgresql:// URI is used as given."""
    if spec.startswith(("postgresql://", "postgres://")):
        try:
            version = server_version(spec)
        except Exception as exc:
            raise ProvisionError(f"cannot connect to {spec}: {exc}") from exc
        yield PgTarget(url=spec, data_dir=None, version=version)
        return
    with postgres_server(scratch, name, max_connections=max_connections) as target:
        yield target


@contextlib.contextmanager
def postgres_server(scratch: Path, name: str = "main",
                    max_connections: int = 200) -> Iterator[PgTarget]:
    """Start a throwaway server; stop it and delete its data directory on the way out."""
    bin_dir = find_bin_dir()
    account = _run_as()
    data_dir = scratch / f"{DATA_DIR_PREFIX}{name}"
    log_path = scratch / f"{DATA_DIR_PREFIX}{name}.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        _make_data_dir(data_dir, account)
        _initdb(bin_dir, data_dir, account)
        for attempt in range(3):
            port = _process.free_port()
            proc = _start(bin_dir, data_dir, port, max_connections, log_path, account)
            url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            if _wait_ready(proc, url, log_path, last=attempt == 2):
                break
            _stop(proc.pid, proc)
            proc = None
        assert proc is not None
        with connect(url, statement_timeout_ms=30000) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        db_url = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
        yield PgTarget(url=db_url, data_dir=data_dir, version=server_version(db_url))
    finally:
        if proc is not None:
            _stop(proc.pid, proc)
        shutil.rmtree(data_dir, ignore_errors=True)
        log_path.unlink(missing_ok=True)


def _make_data_dir(data_dir: Path, account: pwd.struct_passwd | None) -> None:
    scratch = data_dir.parent
    if account is not None:
        # the server's user must traverse (not list) the run's 0700 scratch directory
        mode = scratch.stat().st_mode & 0o7777
        if mode & 0o001 == 0:
            scratch.chmod(mode | 0o001)
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(mode=0o700)
    if account is not None:
        os.chown(data_dir, account.pw_uid, account.pw_gid)


def _initdb(bin_dir: Path, data_dir: Path, account: pwd.struct_passwd | None) -> None:
    cmd = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust",
           "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"]
    try:
        done = subprocess.run(cmd, env=_server_env(data_dir), capture_output=True, timeout=120,
                              cwd=data_dir, **_as_user(account))
    except subprocess.TimeoutExpired as exc:
        raise ProvisionError(f"initdb did not finish within 120 s in {data_dir}") from exc
    if done.returncode != 0:
        tail = " | ".join(done.stderr.decode(errors="replace").strip().splitlines()[-3:])
        raise ProvisionError(f"initdb failed in {data_dir}: {tail}")


def _start(bin_dir: Path, data_dir: Path, port: int, max_connections: int, log_path: Path,
           account: pwd.struct_passwd | None, extra: dict[str, str] | None = None
           ) -> subprocess.Popen[bytes]:
    """The server on 127.0.0.1:`port`; `extra` settings go on top of ours (a replica's)."""
    settings = {
        "listen_addresses": "127.0.0.1", "port": str(port),
        "unix_socket_directories": str(data_dir), "max_connections": str(max_connections),
        "shared_buffers": "64MB", "fsync": "off", "synchronous_commit": "off",
        "full_page_writes": "off", "logging_collector": "off", "log_min_messages": "warning",
        "deadlock_timeout": "1s", "max_wal_size": "1GB",
    } | (extra or {})
    cmd = [str(bin_dir / "postgres"), "-D", str(data_dir)]
    for key, value in settings.items():
        cmd += ["-c", f"{key}={value}"]
    with log_path.open("ab") as log:
        return subprocess.Popen(cmd, env=_server_env(data_dir), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, cwd=data_dir,
                                start_new_session=True, **_as_user(account))


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log_path: Path, last: bool) -> bool:
    """True once the server answers; False if it exited (port race) and may be retried."""
    import psycopg

    def answered() -> bool:
        if proc.poll() is not None:
            return True
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    try:
        _process.wait_for(answered, timeout=START_TIMEOUT_S, interval=0.1,
                          what="PostgreSQL accepting connections")
    except TimeoutError as exc:
        raise ProvisionError(f"PostgreSQL did not accept connections within "
                             f"{START_TIMEOUT_S:.0f} s: {_process.log_tail(log_path)}") from exc
    if proc.poll() is None:
        return True
    if last:
        raise ProvisionError(f"PostgreSQL exited at start: {_process.log_tail(log_path)}")
    return False


def _stop(pid: int, proc: subprocess.Popen[bytes] | None = None) -> bool:
    # SIGINT = fast shutdown (rolls back open transactions); SIGQUIT = immediate
    return _process.stop_pid(pid, polite=signal.SIGINT, hard=signal.SIGQUIT,
                             timeout=STOP_TIMEOUT_S, reap=proc.poll if proc else None)


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        first = (data_dir / "postmaster.pid").read_text().splitlines()[0]
        pid = int(first.strip())
    except (OSError, IndexError, ValueError):
        return None
    # only a postgres process of this very data directory (pids get reused)
    args = _process.cmdline(pid)
    if args and Path(args[0]).name == "postgres" and str(data_dir) in args:
        return pid
    return None


def reap(all_runs: bool, live_run_ids: set[str], root: Path | None = None) -> list[str]:
    """Stop harness PostgreSQL servers of dead runs (all runs if `all_runs`), delete their data.

    Servers are found by data directory: /tmp/repro-*/repro-pg-*. A scratch
    directory whose owner.pid names a run in `live_run_ids` is left alone
    unless `all_runs`. Returns one line per server stopped or directory removed.
    """
    from repro.harness.run import SCRATCH_ROOT

    done: list[str] = []
    pattern = f"{_process.SCRATCH_GLOB}/{DATA_DIR_PREFIX}*"
    for data_dir in sorted((root or SCRATCH_ROOT).glob(pattern)):
        if not data_dir.is_dir():
            continue
        run_id = _process.scratch_run_id(data_dir.parent)
        if not all_runs and run_id is not None and run_id in live_run_ids:
            continue
        pid = _postmaster_pid(data_dir)
        if pid is not None:
            stopped = _stop(pid)
            done.append(f"postgres pid {pid} ({data_dir}): "
                        f"{'stopped' if stopped else 'would not stop'}")
            if not stopped:
                continue
        shutil.rmtree(data_dir, ignore_errors=True)
        (data_dir.parent / f"{data_dir.name}.log").unlink(missing_ok=True)
        done.append(f"removed PostgreSQL data directory {data_dir}")
    return done
