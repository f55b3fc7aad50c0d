"""A replicated PostgreSQL the harness starts: one primary, N streaming replicas, on loopback.

Model: the embedded server of `postgres.py` (Debian's PostgreSQL, as the `postgres`
user when we are root, listening on 127.0.0.1 only, its socket in its data directory)
started once as the primary; each replica is a `pg_basebackup -R -X stream` of it
(standby.signal and primary_conninfo written by -R), started on a port of its own as a
hot standby whose `cluster_name` (the WAL receiver's application_name) is its name.

    with replicated_cluster(run.scratch, "fixed", replicas=2) as cluster:
        cluster.primary.url, [r.url for r in cluster.replicas], cluster.replicas[0].pid

Names: every data directory is `<scratch>/repro-pg-<name>-<node>` (node: `primary`,
`replica1`, ...), its log beside it, so the database reaper (postgres.reap: every
/tmp/repro-*/repro-pg-* of a dead run, stopped through its postmaster.pid, deleted)
removes what a SIGKILLed run left; a frozen replica is thawed first by the freezer
reaper (repro.harness.faults.pause, first in REAPERS). On the way out of the block
(pass, failure, Ctrl-C) the replicas are stopped, then the primary (fast shutdown,
then immediate, then SIGKILL), and every directory is deleted.

Ready means, for every replica: the primary lists it as `streaming` in
pg_stat_replication, its own pg_stat_wal_receiver says `streaming`, it is in recovery,
and it has replayed a row the primary wrote after it started (the stream carries data),
and it answers a query. Every connection has a connect timeout and a statement timeout.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.harness import procs as _process
from repro.harness.errors import ProvisionError
from repro.harness.services.databases import postgres as pg

READY_TIMEOUT_S = 60.0
BASEBACKUP_TIMEOUT_S = 120.0
# a replica that is frozen for a while must find the WAL it missed still on the primary
PRIMARY_SETTINGS = {"wal_level": "replica", "max_wal_senders": "10", "wal_keep_size": "256MB"}


@dataclass(frozen=True)
class PgNode:
    name: str        # "primary", "replica1", ...
    port: int
    url: str         # postgresql://postgres@127.0.0.1:<port>/repro
    data_dir: Path
    pid: int         # the postmaster (its children: backends, WAL receiver, ...)

    @property
    def host_port(self) -> tuple[str, int]:
        return "127.0.0.1", self.port


@dataclass(frozen=True)
class PgCluster:
    primary: PgNode
    replicas: tuple[PgNode, ...]
    version: str

    @property
    def replica_urls(self) -> list[str]:
        return [r.url for r in self.replicas]

    @property
    def nodes(self) -> tuple[PgNode, ...]:
        return (self.primary, *self.replicas)

    def node(self, name: str) -> PgNode:
        return next(n for n in self.nodes if n.name == name)


def data_dir_of(scratch: Path, name: str, node: str) -> Path:
    return scratch / f"{pg.DATA_DIR_PREFIX}{name}-{node}"


@contextlib.contextmanager
def replicated_cluster(scratch: Path, name: str = "main", replicas: int = 2,
                       max_connections: int = 200) -> Iterator[PgCluster]:
    """Start a primary and `replicas` streaming replicas (their base backups and starts
    side by side); stop and delete all on the way out, replicas first."""
    bin_dir = pg.find_bin_dir()
    account = pg._run_as()
    procs: list[subprocess.Popen[bytes]] = []
    dirs: list[Path] = []
    try:
        primary_dir = data_dir_of(scratch, name, "primary")
        dirs.append(primary_dir)
        pg._make_data_dir(primary_dir, account)
        pg._initdb(bin_dir, primary_dir, account)
        proc, port = _start_node(bin_dir, primary_dir, max_connections, account,
                                 PRIMARY_SETTINGS | {"cluster_name": "primary"})
        procs.append(proc)
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with pg.connect(admin, statement_timeout_ms=30000) as conn:
            conn.execute(f"CREATE DATABASE {pg.DATABASE}")
        primary = PgNode("primary", port, _db_url(port), primary_dir, proc.pid)
        names = [f"replica{i}" for i in range(1, replicas + 1)]
        for node in names:
            dirs.append(data_dir_of(scratch, name, node))
            pg._make_data_dir(dirs[-1], account)
        nodes: list[PgNode | None] = [None] * replicas
        lock = threading.Lock()

        def replica(i: int) -> None:  # a base backup, then the standby: the replicas at once
            data_dir = data_dir_of(scratch, name, names[i])
            _basebackup(bin_dir, data_dir, port, account)
            rproc, rport = _start_node(bin_dir, data_dir, max_connections, account,
                                       {"hot_standby": "on", "cluster_name": names[i]})
            with lock:
                procs.append(rproc)
            nodes[i] = PgNode(names[i], rport, _db_url(rport), data_dir, rproc.pid)

        with ThreadPoolExecutor(max_workers=replicas) as pool:
            for future in [pool.submit(replica, i) for i in range(replicas)]:
                future.result()  # the first error, once every replica's attempt has ended
        cluster = PgCluster(primary, tuple(n for n in nodes if n is not None),
                            pg.server_version(primary.url))
        wait_streaming(cluster)
        yield cluster
    finally:
        for proc in reversed(procs):  # replicas first, then the primary
            pg._stop(proc.pid, proc)
        for data_dir in dirs:
            shutil.rmtree(data_dir, ignore_errors=True)
            data_dir.with_suffix(".log").unlink(missing_ok=True)


def _db_url(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{pg.DATABASE}"


def _start_node(bin_dir: Path, data_dir: Path, max_connections: int, account: Any,
                extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    log = data_dir.with_suffix(".log")
    for attempt in range(3):
        port = _process.free_port()
        proc = pg._start(bin_dir, data_dir, port, max_connections, log, account, extra)
        if pg._wait_ready(proc, f"postgresql://postgres@127.0.0.1:{port}/postgres", log,
                          last=attempt == 2):
            return proc, port
        pg._stop(proc.pid, proc)  # lost a port race: try another port
    raise ProvisionError(f"PostgreSQL in {data_dir} did not start")  # unreachable: last raises


def _basebackup(bin_dir: Path, data_dir: Path, primary_port: int, account: Any) -> None:
    cmd = [str(bin_dir / "pg_basebackup"), "-D", str(data_dir), "-h", "127.0.0.1",
           "-p", str(primary_port), "-U", "postgres", "-w", "-R", "-X", "stream",
           "-c", "fast", "--no-sync", "--no-manifest"]
    try:
        done = subprocess.run(cmd, env=pg._server_env(data_dir), capture_output=True,
                              timeout=BASEBACKUP_TIMEOUT_S, cwd=data_dir, **pg._as_user(account))
    except subprocess.TimeoutExpired as exc:
        raise ProvisionError(f"pg_basebackup into {data_dir} did not finish within "
                             f"{BASEBACKUP_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        tail = " | ".join(done.stderr.decode(errors="replace").strip().splitlines()[-3:])
        raise ProvisionError(f"pg_basebackup into {data_dir} failed: {tail}")


def streaming_state(cluster: PgCluster) -> dict[str, str]:
    """Replica name -> what it lacks to count as ready ("" when it streams and answers)."""
    marker = time.time_ns()
    with pg.connect(cluster.primary.url, statement_timeout_ms=5000) as conn:
        rows = conn.execute("SELECT application_name, state FROM pg_stat_replication").fetchall()
        conn.execute("CREATE TABLE IF NOT EXISTS repro_ready (marker bigint)")
        conn.execute("INSERT INTO repro_ready VALUES (%s)", (marker,))
    on_primary = {str(a): str(s) for a, s in rows}
    lacking = {}
    for r in cluster.replicas:
        lacking[r.name] = _replica_lacks(r, on_primary.get(r.name, ""), marker)
    return lacking


def _replica_lacks(r: PgNode, state_on_primary: str, marker: int) -> str:
    if state_on_primary != "streaming":
        return f"the primary lists it as {state_on_primary or 'absent'!r}"
    try:
        with pg.connect(r.url, statement_timeout_ms=5000, connect_timeout_s=3) as conn:
            status = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
            recovering = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            seen = _process.eventually(lambda: conn.execute(
                "SELECT count(*) FROM repro_ready WHERE marker >= %s",
                (marker,)).fetchone()[0], timeout=5.0) if status else False
    except Exception as exc:  # not answering yet
        return f"does not answer: {str(exc).strip()[:120]}"
    if not status or status[0] != "streaming":
        return f"its WAL receiver is {status[0] if status else 'absent'!r}"
    if not recovering or not recovering[0]:
        return "it is not in recovery (not a standby)"
    if not seen:
        return "it has not replayed the primary's latest write"
    return ""


def wait_streaming(cluster: PgCluster, timeout: float = READY_TIMEOUT_S) -> None:
    """Until every replica streams, answers and has replayed a fresh write; ProvisionError."""
    last: dict[str, str] = {}

    def ready() -> bool:
        nonlocal last
        try:
            last = streaming_state(cluster)
        except Exception as exc:
            last = {"primary": f"does not answer: {exc}"}
        return not any(last.values())

    try:
        _process.wait_for(ready, timeout=timeout, interval=0.2, what="replicas streaming")
    except TimeoutError as exc:
        why = "; ".join(f"{k}: {v}" for k, v in last.items() if v)
        raise ProvisionError(f"replicas not streaming within {timeout:.0f} s: {why}") from exc
