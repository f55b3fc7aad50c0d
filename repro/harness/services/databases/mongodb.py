"""MongoDB targets through pymongo: a mongodb:// URI, or a `mongod` from PATH.

Model: `mongo_target(spec, scratch, tickets=N)` yields a `MongoTarget`. The spec
is a mongodb:// (or mongodb+srv://) URI, used as given (the harness only
creates and drops its own `repro_*` collections there), or "mongodb": start
`mongod` from PATH on a temporary dbpath under the run's scratch directory
(`/tmp/repro-<short>/repro-mongo-<name>`), listening on 127.0.0.1 at a free
port, with a *small* ticket pool (N read and N write tickets instead of 128)
so that ticket exhaustion shows on a small machine. From 7.0 on MongoDB sizes
its pool dynamically; we pin it (`storageEngineConcurrencyAdjustmentAlgorithm
= fixedConcurrentTransactions`).

`ticket_sample(client)` reads serverStatus: tickets out/available/total for
reads and writes (`queues.execution` from 7.0, `wiredTiger.concurrentTransactions`
before) and the cumulative time operations spent acquiring the Global and
Database locks (`locks.*.timeAcquiringMicros`).

Stopping is SIGTERM (clean shutdown), SIGINT, then SIGKILL, then the dbpath is
deleted; `reap()` finds servers of dead runs by their mongod.lock.

No MongoDB server can be installed on the machine this project is built on:
there `available()` is False and tests skip with MISSING_REASON.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.harness import procs as _process
from repro.harness.errors import PrerequisiteError, ProvisionError
from repro.harness.names import PREFIX

DBPATH_PREFIX = f"{PREFIX}-mongo-"
DATABASE = "repro"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
URL_ENV = "REPRO_MONGODB_URL"
MISSING_REASON = ("no MongoDB server: `mongod` is not on PATH and no mongodb:// URI is "
                  f"configured (set {URL_ENV} or [mongo_index_lock] db)")


@dataclass(frozen=True)
class MongoTarget:
    url: str  # includes the database: mongodb://127.0.0.1:PORT/repro
    database: str
    dbpath: Path | None  # None: a server we did not start
    version: str

    @property
    def embedded(self) -> bool:
        return self.dbpath is not None


@dataclass(frozen=True)
class TicketSample:
    read_out: int
    read_available: int
    read_total: int
    write_out: int
    write_available: int
    write_total: int
    lock_acquire_s: float  # cumulative, Global + Database locks, all modes

    @property
    def exhausted(self) -> bool:
        return self.read_available <= 0 or self.write_available <= 0


def is_uri(spec: str) -> bool:
    return spec.startswith(("mongodb://", "mongodb+srv://"))


def find_mongod() -> str | None:
    return shutil.which("mongod")


def available(spec: str = "mongodb") -> bool:
    """Whether a MongoDB target can be had: a URI given, or mongod on PATH."""
    return is_uri(spec) or bool(os.environ.get(URL_ENV)) or find_mongod() is not None


def client(url: str, *, timeout_ms: int = 10000) -> Any:
    """A MongoClient whose every wait is bounded (selection, connect, socket)."""
    from repro.harness.extras import need
    need("pymongo")
    from pymongo import MongoClient

    return MongoClient(url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                       socketTimeoutMS=timeout_ms, appname="repro")


def database_name(url: str) -> str:
    from pymongo.uri_parser import parse_uri

    name = parse_uri(url).get("database")
    return str(name) if name else DATABASE


def _tickets(node: Mapping[str, Any]) -> tuple[int, int, int]:
    if "out" not in node and isinstance(node.get("normalPriority"), Mapping):
        node = node["normalPriority"]
    return int(node.get("out", 0)), int(node.get("available", 0)), \
        int(node.get("totalTickets", 0))


def parse_server_status(status: Mapping[str, Any]) -> TicketSample:
    """Tickets and lock-acquisition time from a serverStatus document (any 4.x-8.x shape)."""
    pools = (status.get("queues", {}).get("execution")
             or status.get("wiredTiger", {}).get("concurrentTransactions") or {})
    r_out, r_avail, r_total = _tickets(pools.get("read", {}))
    w_out, w_avail, w_total = _tickets(pools.get("write", {}))
    micros = 0
    for scope in ("Global", "Database"):
        acquiring = status.get("locks", {}).get(scope, {}).get("timeAcquiringMicros", {})
        micros += sum(int(v) for v in acquiring.values())
    return TicketSample(read_out=r_out, read_available=r_avail, read_total=r_total,
                        write_out=w_out, write_available=w_avail, write_total=w_total,
                        lock_acquire_s=micros / 1e6)


def ticket_sample(mongo: Any) -> TicketSample:
    return parse_server_status(mongo.admin.command("serverStatus"))


@contextlib.contextmanager
def mongo_target(spec: str, scratch: Path, name: str = "main",
                 tickets: int = 8) -> Iterator[MongoTarget]:
    """A URI (or $REPRO_MONGODB_URL) is used as given; "mongodb" starts mongod from PATH."""
    url = spec if is_uri(spec) else os.environ.get(URL_ENV, "")
    if url:
        try:
            with client(url) as mongo:
                version = str(mongo.server_info()["version"])
        except Exception as exc:
            raise ProvisionError(f"cannot reach MongoDB at {url}: {exc}") from exc
        yield MongoTarget(url=url, database=database_name(url), dbpath=None, version=version)
        return
    with mongod_server(scratch, name, tickets=tickets) as target:
        yield target


def mongod_version(mongod: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([mongod, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except subprocess.TimeoutExpired as exc:
        raise ProvisionError(f"`{mongod} --version` did not answer within 30 s") from exc
    found = re.search(r"db version v(\d+)\.(\d+)\.(\d+)", out)
    if not found:
        raise ProvisionError(f"cannot read the version of {mongod}: {out.strip()[:200]}")
    return tuple(int(x) for x in found.groups())


def mongod_command(mongod: str, version: tuple[int, ...], dbpath: Path, port: int,
                   tickets: int) -> list[str]:
    cmd = [mongod, "--dbpath", str(dbpath), "--port", str(port), "--bind_ip", "127.0.0.1",
           "--nounixsocket", "--wiredTigerCacheSizeGB", "0.25",
           "--setParameter", f"wiredTigerConcurrentReadTransactions={tickets}",
           "--setParameter", f"wiredTigerConcurrentWriteTransactions={tickets}"]
    if version >= (7, 0):
        cmd += ["--setParameter",
                "storageEngineConcurrencyAdjustmentAlgorithm=fixedConcurrentTransactions"]
    return cmd


@contextlib.contextmanager
def mongod_server(scratch: Path, name: str = "main", tickets: int = 8) -> Iterator[MongoTarget]:
    """Start mongod on a temporary dbpath; stop it and delete the dbpath on the way out."""
    mongod = find_mongod()
    if mongod is None:
        raise PrerequisiteError("`mongod` is not on PATH",
                                f"install MongoDB's server or set {URL_ENV}")
    version = mongod_version(mongod)
    dbpath = scratch / f"{DBPATH_PREFIX}{name}"
    log_path = scratch / f"{DBPATH_PREFIX}{name}.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        shutil.rmtree(dbpath, ignore_errors=True)
        dbpath.mkdir(mode=0o700)
        for attempt in range(3):
            port = _process.free_port()
            with log_path.open("ab") as log:
                proc = subprocess.Popen(
                    mongod_command(mongod, version, dbpath, port, tickets),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
            url = f"mongodb://127.0.0.1:{port}/{DATABASE}"
            if _wait_ready(proc, url, log_path, last=attempt == 2):
                break
            _stop(proc.pid, proc)
            proc = None
        yield MongoTarget(url=url, database=DATABASE, dbpath=dbpath,
                          version=".".join(map(str, version)))
    finally:
        if proc is not None:
            _stop(proc.pid, proc)
        shutil.rmtree(dbpath, ignore_errors=True)
        log_path.unlink(missing_ok=True)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log_path: Path, last: bool) -> bool:
    from pymongo.errors import PyMongoError

    def answered() -> bool:
        if proc.poll() is not None:
            return True
        try:
            with client(url, timeout_ms=1000) as mongo:
                mongo.admin.command("ping")
            return True
        except PyMongoError:
            return False

    try:
        _process.wait_for(answered, timeout=START_TIMEOUT_S, interval=0.1,
                          what="mongod accepting connections")
    except TimeoutError as exc:
        raise ProvisionError(f"mongod did not answer within {START_TIMEOUT_S:.0f} s: "
                             f"{_process.log_tail(log_path)}") from exc
    if proc.poll() is None:
        return True
    if last:
        raise ProvisionError(f"mongod exited at start: {_process.log_tail(log_path)}")
    return False


def _stop(pid: int, proc: subprocess.Popen[bytes] | None = None) -> bool:
    return _process.stop_pid(pid, polite=signal.SIGTERM, hard=signal.SIGINT,
                             timeout=STOP_TIMEOUT_S, reap=proc.poll if proc else None)


def _lock_pid(dbpath: Path) -> int | None:
    try:
        pid = int((dbpath / "mongod.lock").read_text().strip() or "0")
    except (OSError, ValueError):
        return None
    args = _process.cmdline(pid) if pid else []
    if args and Path(args[0]).name == "mongod" and str(dbpath) in args:
        return pid
    return None


def reap(all_runs: bool, live_run_ids: set[str], root: Path | None = None) -> list[str]:
    """Stop harness mongod servers of dead runs (all runs if `all_runs`), delete their dbpath."""
    from repro.harness.run import SCRATCH_ROOT

    done: list[str] = []
    pattern = f"{_process.SCRATCH_GLOB}/{DBPATH_PREFIX}*"
    for dbpath in sorted((root or SCRATCH_ROOT).glob(pattern)):
        if not dbpath.is_dir():
            continue
        run_id = _process.scratch_run_id(dbpath.parent)
        if not all_runs and run_id is not None and run_id in live_run_ids:
            continue
        pid = _lock_pid(dbpath)
        if pid is not None:
            stopped = _stop(pid)
            done.append(f"mongod pid {pid} ({dbpath}): "
                        f"{'stopped' if stopped else 'would not stop'}")
            if not stopped:
                continue
        shutil.rmtree(dbpath, ignore_errors=True)
        (dbpath.parent / f"{dbpath.name}.log").unlink(missing_ok=True)
        done.append(f"removed mongod dbpath {dbpath}")
    return done
