"""What each replica served the caller, read from the replica itself (its own counters).

Model: per replica, a thread on the runner (probes.pg_nodes.PerNode) reads, every
`interval_s`, how many scans of `repro_jobs` the server has run (`pg_stat_user_tables`:
idx_scan + seq_scan). Only the caller reads `repro_jobs` (the node probe runs
`SELECT 1`; this reader reads a view; the seeding's count ran before the caller
started), so the count's rise is the caller's reads that this server executed: the
replica's word, not the caller's. Each read is under a client-side deadline
(services.databases.deadline): a frozen replica gives no sample, never a hung reader;
a connection lost that way is made again on a later round.

Each answered read appends a `series` event (host = the replica, panel "served",
`reads` = the cumulative count). PostgreSQL backends publish their counters when they go
idle, at most once a second (PGSTAT_MIN_INTERVAL), so the count lags the reads by up to
about a second; a read queued in a frozen replica and executed at the thaw for a caller
that had given up on it counts too (check.py's rule is built for both).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ClassVar

from repro.harness.probes.pg_nodes import PerNode
from repro.harness.services.databases.deadline import connect_within, query_within
from repro.harness.services.databases.replicated import PgNode

PANEL = "served"
READS = ("SELECT coalesce(sum(idx_scan), 0) + coalesce(sum(seq_scan), 0) "
         "FROM pg_stat_user_tables WHERE relname = 'repro_jobs'")


@dataclass
class ServedReads(PerNode):
    interval_s: float = 0.25
    thread_name: ClassVar[str] = "pg-served"

    def _round(self, node: PgNode, conn: Any) -> Any:
        return self._read(node, conn)

    def _read(self, node: PgNode, conn: Any) -> Any:
        t0 = self.history.now()
        try:
            if conn is None or conn.closed:
                conn = connect_within(node.url, deadline_s=self.timeout_s, autocommit=True,
                                      application_name="repro-served")
            row = query_within(conn, READS, deadline_s=self.timeout_s)
        except Exception:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            return None
        reads = int(row[0])
        self.history.append("series", node.name, t=t0, panel=PANEL, name="reads",
                            value=reads, unit="reads", reads=reads)
        return conn
