"""Which client settings save a caller from a replica that accepts but never answers: measured.

Model: one replicated cluster (a primary and two replicas, repro.harness.services.
databases.replicated); for each client setting, two calls to replica1 while it is
faulted: on a connection opened *before* the fault (pooled: a `SELECT` sent as the
fault began), on one opened before and left idle until IDLE_S into the fault (idle:
what TCP keepalives are for), and on a *new* connection (connect, then the same
`SELECT`). Every call runs in its own thread; the table records how long each took
to return from when it was sent (with a row, or with an error) or that it had not
returned within `cap_s` (the fault lasts until every call has had that long). Two
faults, one after the other:

  freeze   replica1's processes frozen (faults.pause.FreezeProcesses): its kernel still
           completes handshakes and acknowledges data (the 2019 replicas)
  drop     every packet to and from replica1's port dropped on arrival (faults.drop):
           nothing is acknowledged, not even the SYN

    .venv/bin/python -m repro.blackhole_replica.settings      # prints the markdown table

"Saves the caller" means the call came back (a row, or an error the caller can act on)
within a bound well under the fault; a multi-host conninfo also *answers*, from the
next host. tests/test_replica_client_settings.py asserts the findings the fixed fixture
rests on.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.harness.faults.base import Fault
from repro.harness.faults.drop import DropLoopbackPort
from repro.harness.faults.pause import FreezeProcesses
from repro.harness.run import Run
from repro.harness.services.databases.deadline import connect_within, query_within
from repro.harness.services.databases.replicated import PgCluster, PgNode, replicated_cluster

CAP_S = 6.0         # observation of each call, from when it was sent
IDLE_S = 4.0        # the idle connection's query goes out this long into the fault
DEADLINE_S = 0.5    # the client-side deadline of the "deadline" setting
QUERY = "SELECT 1"


@dataclass(frozen=True)
class Setting:
    name: str
    what: str
    params: dict[str, Any] = field(default_factory=dict)  # psycopg.connect keywords
    deadline_s: float = 0.0      # a client-side deadline (0: none)
    multi_host: bool = False     # replica1 first, replica2 second, target_session_attrs


SETTINGS = (
    Setting("none", "libpq defaults (no timeout of any kind)"),
    Setting("statement_timeout", "server-side statement_timeout = 500 ms",
            {"options": "-c statement_timeout=500"}),
    Setting("keepalives", "TCP keepalives: idle 1 s, interval 1 s, count 2",
            {"keepalives": 1, "keepalives_idle": 1, "keepalives_interval": 1,
             "keepalives_count": 2}),
    Setting("tcp_user_timeout", "tcp_user_timeout = 1000 ms", {"tcp_user_timeout": 1000}),
    Setting("connect_timeout", "connect_timeout = 2 s (libpq's minimum)",
            {"connect_timeout": 2}),
    Setting("deadline", f"client-side deadline {DEADLINE_S:g} s, connection abandoned "
            "(socket shut down)", deadline_s=DEADLINE_S),
    Setting("multi_host", "host list replica1,replica2, target_session_attrs=standby, "
            "connect_timeout = 2 s", {"target_session_attrs": "standby", "connect_timeout": 2},
            multi_host=True),
)


@dataclass(frozen=True)
class Outcome:
    setting: str
    fault: str
    call: str            # "pooled", "idle" or "new"
    returned_s: float | None  # None: had not returned within the cap
    answered: bool       # returned a row (not an error)
    error: str = ""

    def cell(self, cap_s: float) -> str:
        if self.returned_s is None:
            return f"no return in {cap_s:g} s"
        how = "answered" if self.answered else "error"
        return f"{how} in {self.returned_s:.1f} s"


def _url(cluster: PgCluster, s: Setting) -> str:
    r1, r2 = cluster.replicas[0], cluster.replicas[1]
    if s.multi_host:
        return f"postgresql://postgres@127.0.0.1:{r1.port},127.0.0.1:{r2.port}/repro"
    return r1.url


def _connect(url: str, s: Setting) -> Any:
    import psycopg

    params = {"autocommit": True, **s.params}
    if s.deadline_s:
        return connect_within(url, deadline_s=s.deadline_s, autocommit=True)
    if "connect_timeout" not in params:
        params["connect_timeout"] = 0  # libpq's default: wait for ever
    return psycopg.connect(url, **params)


def _query(conn: Any, s: Setting) -> Any:
    if s.deadline_s:
        return query_within(conn, QUERY, deadline_s=s.deadline_s)
    return conn.execute(QUERY).fetchone()


class _Call:
    """One call in its own thread: when it returned, and how."""

    def __init__(self, setting: Setting, fault: str, call: str,
                 work: Callable[[], Any], after_s: float = 0.0) -> None:
        self.setting, self.fault, self.call = setting, fault, call
        self.work, self.after_s = work, after_s
        self.t0 = 0.0
        self.end: float | None = None
        self.answered = False
        self.error = ""
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"call-{setting.name}-{call}")

    def start(self) -> None:
        self.t0 = time.monotonic() + self.after_s
        self.thread.start()

    def _run(self) -> None:
        time.sleep(self.after_s)  # the connection stays idle this long into the fault
        try:
            self.answered = self.work() is not None
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:80]}"
        self.end = time.monotonic()

    def outcome(self, cap_s: float) -> Outcome:
        took = None if self.end is None or self.end - self.t0 > cap_s else self.end - self.t0
        return Outcome(self.setting.name, self.fault, self.call,
                       None if took is None else round(took, 2),
                       self.answered if took is not None else False, self.error)


def measure_fault(cluster: PgCluster, fault: Fault, fault_name: str,
                  cap_s: float = CAP_S) -> list[Outcome]:
    """Every setting, pooled and new, against replica1 under `fault` (healed after)."""
    from repro.harness.faults.base import ACTIVE

    pooled = {s.name: _connect(_url(cluster, s), s) for s in SETTINGS}
    idle = {s.name: _connect(_url(cluster, s), s) for s in SETTINGS}
    calls: list[_Call] = []
    try:
        ACTIVE.add(fault)
        try:
            fault.inject()
            for s in SETTINGS:
                calls.append(_Call(s, fault_name, "pooled", functools.partial(
                    _query, pooled[s.name], s)))
                calls.append(_Call(s, fault_name, "idle", functools.partial(
                    _query, idle[s.name], s), after_s=IDLE_S))
                calls.append(_Call(s, fault_name, "new", functools.partial(
                    _new_call, cluster, s)))
            for c in calls:
                c.start()
            for c in calls:
                c.thread.join(max(0.0, c.t0 + cap_s - time.monotonic()))
        finally:
            fault.heal()
            ACTIVE.remove(fault)
        return [c.outcome(cap_s) for c in calls]
    finally:
        for c in calls:
            c.thread.join(2.0)  # after the heal most calls come back; none is waited on long
        for conn in [*pooled.values(), *idle.values()]:
            with contextlib.suppress(Exception):
                conn.close()


def _new_call(cluster: PgCluster, s: Setting) -> Any:
    conn = _connect(_url(cluster, s), s)
    try:
        return _query(conn, s)
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def measure(run: Run, cap_s: float = CAP_S) -> list[Outcome]:
    with replicated_cluster(run.scratch, "settings", replicas=2) as cluster:
        r1: PgNode = cluster.replicas[0]
        out = measure_fault(cluster, FreezeProcesses(run, "settings-r1", [r1.pid]), "freeze",
                            cap_s)
        out += measure_fault(cluster, DropLoopbackPort(run, "settings", r1.port), "drop",
                             cap_s)
        return out


def table(outcomes: list[Outcome], cap_s: float = CAP_S) -> str:
    """Markdown: one row per setting, a column per (fault, call)."""
    cols = [(f, c) for f in ("freeze", "drop") for c in ("pooled", "idle", "new")]
    by = {(o.setting, o.fault, o.call): o for o in outcomes}
    lines = ["| setting | " + " | ".join(f"{f}: {c}" for f, c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for s in SETTINGS:
        cells = [by[(s.name, f, c)].cell(cap_s) if (s.name, f, c) in by else "-"
                 for f, c in cols]
        lines.append(f"| {s.what} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@contextlib.contextmanager
def _run() -> Iterator[Run]:
    from repro.harness.run import start_run

    run = start_run(Path("reports"))
    try:
        yield run
    finally:
        run.close()


if __name__ == "__main__":
    with _run() as r:
        started = time.monotonic()
        results = measure(r)
        print(table(results))
        for o in results:
            if o.error:
                print(f"  {o.fault} {o.call} {o.setting}: {o.error}")
        print(f"({time.monotonic() - started:.0f} s)")
