"""The job queue on the primary: a steady producer, workers that depend on the replicas, a sampler.

Model (threads on the runner, each with its own connections):

  table     repro_queue (id bigserial primary key, state text not null, enqueued_at
            timestamptz not null default now(), started_at, finished_at); `state` is
            `queued` (waiting), `running` (taken by a worker), `done`
  producer  inserts a `queued` job every 1/arrival_rate s on a fixed schedule (open
            loop: a stalled queue does not slow arrivals down)
  workers   each takes the oldest queued job (`UPDATE ... WHERE id = (SELECT id ... FOR
            UPDATE SKIP LOCKED LIMIT 1) RETURNING id`: `running`, started_at), reads what
            the job needs from a replica (its own row as replicated; worker k uses replica
            k mod 2), works `job_s`, marks it `done` (finished_at). The replica read has no
            deadline, like the 2019 workers: a frozen replica holds the worker until it
            thaws. With no job queued, a worker looks again 50 ms later.
  sampler   every 0.25 s on the primary: depth (queued), running, done and the oldest
            queued job's age: one `queue` event (the checker's), and `series` events for
            the timeline (panel "queue": depth; panel "oldest": age).

A thread that dies of an error (not of `stop()`) records a `queue.died` event: the
checker then says the run proves nothing. `stop()` stops the producer and workers and
waits for each (bounded: a worker still stuck on a frozen replica is left to the
cluster's shutdown, which ends its connection).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from repro.harness import procs
from repro.harness.history import History
from repro.harness.services.databases import postgres as pg
from repro.harness.services.databases.replicated import PgCluster

IDLE_POLL_S = 0.05
SAMPLE_EVERY_S = 0.25
JOIN_S = 5.0

SCHEMA = """
CREATE TABLE repro_queue (
    id bigserial PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('queued', 'running', 'done')),
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX repro_queue_queued ON repro_queue (id) WHERE state = 'queued'
"""
CLAIM = ("UPDATE repro_queue SET state = 'running', started_at = now() WHERE id = ("
         "SELECT id FROM repro_queue WHERE state = 'queued' ORDER BY id "
         "FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id")
SAMPLE = """
SELECT count(*) FILTER (WHERE state = 'queued'),
       count(*) FILTER (WHERE state = 'running'),
       count(*) FILTER (WHERE state = 'done'),
       coalesce(extract(epoch FROM clock_timestamp() - min(enqueued_at)
                        FILTER (WHERE state = 'queued')), 0)
FROM repro_queue
"""


def create(cluster: PgCluster) -> None:
    """The table on the primary, waited for on every replica (the workers read it there)."""
    with pg.connect(cluster.primary.url, statement_timeout_ms=30000) as conn:
        for statement in SCHEMA.split(";"):
            conn.execute(statement)
    for r in cluster.replicas:
        with pg.connect(r.url, statement_timeout_ms=5000) as conn:
            procs.wait_for(functools.partial(_has_table, conn), timeout=30, interval=0.1,
                           what=f"{r.name} replaying repro_queue")


def _has_table(conn: Any) -> bool:
    return conn.execute("SELECT to_regclass('repro_queue') IS NOT NULL").fetchone()[0] is True


@dataclass
class JobQueue:
    cluster: PgCluster
    history: History
    arrival_rate: float
    workers: int
    job_s: float
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _sampler_stop: threading.Event = field(default_factory=threading.Event, init=False)

    def start(self) -> None:
        self._spawn("sampler", self._sample_loop)
        for k in range(self.workers):
            self._spawn(f"worker{k}", functools.partial(self._work_loop, k))
        self._spawn("producer", self._produce_loop)

    def stop(self) -> list[str]:
        """Stop everything; the names of threads still running after their bound."""
        self._stop.set()
        self._sampler_stop.set()
        for t in self._threads:
            t.join(JOIN_S)
        return [t.name for t in self._threads if t.is_alive()]

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception as exc:  # recorded: a dead worker must show in the history
                if not self._stop.is_set():
                    self.history.append("queue.died", name, error=f"{type(exc).__name__}: "
                                        f"{str(exc).strip()[:200]}")

        t = threading.Thread(target=guarded, name=f"queue-{name}", daemon=True)
        self._threads.append(t)
        t.start()

    def _primary(self) -> Any:
        return pg.connect(self.cluster.primary.url, statement_timeout_ms=10000,
                          application_name="repro-queue")

    def _produce_loop(self) -> None:
        with self._primary() as conn:
            began = time.monotonic()
            i = 0
            while not self._stop.is_set():
                wait = began + i / self.arrival_rate - time.monotonic()
                if wait > 0 and self._stop.wait(wait):  # the arrival schedule
                    break
                conn.execute("INSERT INTO repro_queue (state) VALUES ('queued')")
                i += 1

    def _work_loop(self, k: int) -> None:
        replica = self.cluster.replicas[k % len(self.cluster.replicas)]
        import psycopg

        # the 2019 workers' replica reads: libpq's defaults, no deadline of any kind
        with self._primary() as primary, psycopg.connect(replica.url, autocommit=True) as rep:
            while not self._stop.is_set():
                row = primary.execute(CLAIM).fetchone()
                if row is None:
                    self._stop.wait(IDLE_POLL_S)  # nothing queued: look again shortly
                    continue
                job = int(row[0])
                rep.execute("SELECT count(*) FROM repro_queue WHERE id = %s", (job,)).fetchone()
                time.sleep(self.job_s)  # the job's own work
                primary.execute("UPDATE repro_queue SET state = 'done', "
                                "finished_at = now() WHERE id = %s", (job,))

    def _sample_loop(self) -> None:
        conn = None
        try:
            while not self._sampler_stop.is_set():
                began = time.monotonic()
                try:
                    if conn is None:
                        conn = pg.connect(self.cluster.primary.url, statement_timeout_ms=2000,
                                          connect_timeout_s=2, application_name="repro-sampler")
                    depth, running, done, oldest = conn.execute(SAMPLE).fetchone()
                except Exception as exc:
                    self.history.append("note", "sampler", text=f"queue sample failed: {exc}")
                    with contextlib.suppress(Exception):
                        if conn is not None:
                            conn.close()
                    conn = None
                else:
                    t = self.history.now()
                    self.history.append("queue", "primary", t=t, depth=int(depth),
                                        running=int(running), done=int(done),
                                        oldest_age_s=round(float(oldest), 3))
                    self.history.append("series", "primary", t=t, panel="queue",
                                        name="queued", value=int(depth), unit="jobs")
                    self.history.append("series", "primary", t=t, panel="oldest",
                                        name="oldest queued job", value=round(float(oldest), 3),
                                        unit="s")
                self._sampler_stop.wait(max(0.0, SAMPLE_EVERY_S - (time.monotonic() - began)))
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
