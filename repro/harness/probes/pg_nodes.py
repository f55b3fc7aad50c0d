"""Database node probe: does each PostgreSQL server accept a connection, and does it answer?

Model: per node, one thread on the runner with its own cadence (`interval_s`), two legs
per round, so that a frozen node shows as what it is:

  tcp leg    a TCP connect to the node's port (timeout `timeout_s`). A frozen server's
             kernel still completes it; a server whose traffic is dropped does not.
  query leg  `SELECT 1` on a connection the probe keeps open, under a client-side
             deadline of `timeout_s` (services.databases.deadline: the socket is shut
             down at the deadline, so the probe itself never hangs); a connection lost
             that way is made again, under the same deadline, on a later round.

Each leg appends one `probe` event (host = the node's name, `leg`, `ok`, `took_s`,
`error`). "The fault took effect" on a frozen replica is, from outside: query-leg
samples that failed while tcp-leg samples succeeded; on a dropped one both fail.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from repro.harness.history import History
from repro.harness.services.databases.deadline import connect_within, query_within
from repro.harness.services.databases.replicated import PgNode


@dataclass
class PerNode:
    """A thread per node, each on its own cadence (`interval_s`): a round is
    `_round(node, conn) -> conn`, the connection kept open across rounds (None: make it
    again next round) and closed at the end. NodeProbe's and other per-node readers'."""

    history: History
    nodes: Sequence[PgNode]
    interval_s: float = 0.5
    timeout_s: float = 1.0
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    thread_name: ClassVar[str] = "pg-node"

    def start(self) -> None:
        for node in self.nodes:
            t = threading.Thread(target=self._loop, args=(node,), daemon=True,
                                 name=f"{self.thread_name}-{node.name}")
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout_s * 3 + 1)

    def _loop(self, node: PgNode) -> None:
        conn: Any = None
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                conn = self._round(node, conn)
                # the cadence: the next round one interval after this one began
                self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - began)))
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _round(self, node: PgNode, conn: Any) -> Any:
        raise NotImplementedError


@dataclass
class NodeProbe(PerNode):
    thread_name: ClassVar[str] = "pg-probe"

    def _round(self, node: PgNode, conn: Any) -> Any:
        self._tcp(node)
        return self._query(node, conn)

    def _tcp(self, node: PgNode) -> None:
        t0 = self.history.now()
        began = time.monotonic()
        try:
            with socket.create_connection(node.host_port, timeout=self.timeout_s):
                ok, error = True, ""
        except OSError as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        self.history.append("probe", node.name, t=t0, leg="tcp", ok=ok,
                            took_s=round(time.monotonic() - began, 4), error=error)

    def _query(self, node: PgNode, conn: Any) -> Any:
        t0 = self.history.now()
        began = time.monotonic()
        error = ""
        try:
            if conn is None or conn.closed:
                conn = connect_within(node.url, deadline_s=self.timeout_s, autocommit=True,
                                      application_name="repro-probe")
            left = max(0.05, self.timeout_s - (time.monotonic() - began))
            ok = query_within(conn, "SELECT 1", deadline_s=left) is not None
        except Exception as exc:
            ok, error = False, f"{type(exc).__name__}: {str(exc).strip()[:120]}"
            if conn is not None and not conn.closed:
                with contextlib.suppress(Exception):
                    conn.close()
            conn = None
        self.history.append("probe", node.name, t=t0, leg="query", ok=ok,
                            took_s=round(time.monotonic() - began, 4), error=error)
        return conn
