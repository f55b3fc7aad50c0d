"""What the workload, the batch job and the sampler do on each engine.

Model: the service's data is a job queue: `repro_jobs` (owner, status,
created_at, attempts, payload) and `repro_workflows`, with the service's four
indexes (the same list the fixtures declare). The harness builds them before
the storm, as production had them: the incident is about re-declaring
indexes that *exist*. A Driver gives each thread its own session:

  client(name)  a workload client: `write` inserts a queued job, `read`
                looks a job and its workflow up through their indexes
  batch()       the background batch job: `run(hold_s)` is one long write
                transaction over the batch's own rows (PostgreSQL: UPDATE, then
                the transaction stays open for hold_s, as a batch doing work
                between statements does; MongoDB, which has no multi-document
                transaction without a replica set: back-to-back updateMany
                over the batch's rows for hold_s)
  sampler()     `sample()`: lock waits on repro_jobs from pg_locks, or
                tickets and lock-acquisition time from serverStatus

Batch rows (owner "batch") and client rows never overlap, so without the
storm the batch blocks no client: any stall is the lock queue's doing.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import asdict
from typing import Any, Protocol

from repro.harness.services.databases import Target, mongodb, postgres

INDEXES = [
    ("repro_jobs", "repro_jobs_status_idx", ["status"]),
    ("repro_jobs", "repro_jobs_owner_status_idx", ["owner", "status"]),
    ("repro_jobs", "repro_jobs_created_idx", ["created_at"]),
    ("repro_workflows", "repro_workflows_job_idx", ["job_id"]),
]
TABLE = "repro_jobs"
SEED_JOBS = 4000
BATCH_ROWS = 1000
ADMIN_TIMEOUT_MS = 30000
SAMPLER_TIMEOUT_MS = 2000
BATCH_SLICE_S = 0.5


def _seed_id(seq: int) -> int:
    """A seeded job to read: spread over the seed rows, the same sequence every run."""
    return 1 + (seq * 7919) % SEED_JOBS


class Client(Protocol):
    def write(self, seq: int) -> None: ...
    def read(self, seq: int) -> None: ...
    def close(self) -> None: ...


class Batch(Protocol):
    def run(self, hold_s: float) -> int: ...
    def cancel(self) -> None: ...  # from another thread: end the transaction in flight now
    def close(self) -> None: ...


class Sampler(Protocol):
    def sample(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


class Driver(Protocol):
    kind: str
    url: str

    def prepare(self) -> None: ...
    def drop(self) -> None: ...
    def client(self, name: str) -> Client: ...
    def batch(self) -> Batch: ...
    def sampler(self) -> Sampler: ...


def driver_for(target: Target, op_timeout_s: float) -> Driver:
    if isinstance(target, postgres.PgTarget):
        return PgDriver(target.url, op_timeout_s)
    return MongoDriver(target.url, target.database, op_timeout_s)


# ---- PostgreSQL ---------------------------------------------------------------------------

class PgClient:
    def __init__(self, url: str, name: str, op_timeout_s: float):
        self.name = name
        self.conn = postgres.connect(url, statement_timeout_ms=int(op_timeout_s * 1000),
                                     application_name=f"repro-{name}")

    def write(self, seq: int) -> None:
        self.conn.execute("INSERT INTO repro_jobs (owner, status, payload) "
                          "VALUES (%s, 'queued', %s)", (self.name, f"job {seq}"))

    def read(self, seq: int) -> None:
        self.conn.execute("SELECT j.id, j.status, w.state FROM repro_jobs j "
                          "JOIN repro_workflows w ON w.job_id = j.id WHERE j.id = %s",
                          (_seed_id(seq),)).fetchall()

    def close(self) -> None:
        self.conn.close()


class PgBatch:
    def __init__(self, url: str, hold_max_s: float):
        self.conn = postgres.connect(url, statement_timeout_ms=int((hold_max_s + 30) * 1000),
                                     application_name="repro-batch")
        self.cancelled = threading.Event()

    def run(self, hold_s: float) -> int:
        deadline = time.monotonic() + hold_s
        with self.conn.transaction():
            cur = self.conn.execute("UPDATE repro_jobs SET attempts = attempts + 1 "
                                    "WHERE owner = 'batch'")
            # the batch's work between statements, in slices so that cancel() is prompt;
            # the transaction (and its locks) stays open throughout
            while (left := deadline - time.monotonic()) > 0:
                if self.cancelled.is_set():
                    raise InterruptedError("batch transaction cancelled")
                self.conn.execute("SELECT pg_sleep(%s)", (min(left, BATCH_SLICE_S),))
            return int(cur.rowcount)

    def cancel(self) -> None:
        self.cancelled.set()
        self.conn.cancel_safe(timeout=5.0)  # the server cancels the statement; we roll back

    def close(self) -> None:
        self.conn.close()


class PgSampler:
    def __init__(self, url: str):
        self.conn = postgres.connect(url, statement_timeout_ms=SAMPLER_TIMEOUT_MS,
                                     lock_timeout_ms=SAMPLER_TIMEOUT_MS // 2,
                                     application_name="repro-sampler")

    def sample(self) -> dict[str, Any]:
        return {"source": "pg_locks", **asdict(postgres.lock_sample(self.conn, TABLE))}

    def close(self) -> None:
        self.conn.close()


class PgDriver:
    kind = "postgresql"

    def __init__(self, url: str, op_timeout_s: float):
        self.url = url
        self.op_timeout_s = op_timeout_s

    def _admin(self) -> Any:
        return postgres.connect(self.url, statement_timeout_ms=ADMIN_TIMEOUT_MS,
                                lock_timeout_ms=ADMIN_TIMEOUT_MS // 3,
                                application_name="repro-admin")

    def prepare(self) -> None:
        with self._admin() as conn:
            conn.execute("DROP TABLE IF EXISTS repro_workflows, repro_jobs")
            conn.execute("CREATE TABLE repro_jobs (id bigserial PRIMARY KEY, owner text NOT NULL,"
                         " status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),"
                         " attempts int NOT NULL DEFAULT 0, payload text)")
            conn.execute("CREATE TABLE repro_workflows (id bigserial PRIMARY KEY,"
                         " job_id bigint NOT NULL, state text NOT NULL DEFAULT 'pending')")
            for table, name, columns in INDEXES:
                conn.execute(f"CREATE INDEX {name} ON {table} ({', '.join(columns)})")
            conn.execute("INSERT INTO repro_jobs (owner, status, payload) "
                         "SELECT CASE WHEN g <= %s THEN 'batch' ELSE 'seed' END, "
                         "CASE WHEN g %% 3 = 0 THEN 'done' ELSE 'queued' END, 'seed ' || g "
                         "FROM generate_series(1, %s) AS g", (BATCH_ROWS, SEED_JOBS))
            conn.execute("INSERT INTO repro_workflows (job_id) SELECT id FROM repro_jobs")
            conn.execute("ANALYZE repro_jobs")
            conn.execute("ANALYZE repro_workflows")

    def drop(self) -> None:
        with self._admin() as conn:
            conn.execute("DROP TABLE IF EXISTS repro_workflows, repro_jobs")

    def client(self, name: str) -> Client:
        return PgClient(self.url, name, self.op_timeout_s)

    def batch(self) -> Batch:
        return PgBatch(self.url, hold_max_s=BATCH_SLICE_S)

    def sampler(self) -> Sampler:
        return PgSampler(self.url)


# ---- MongoDB ------------------------------------------------------------------------------

class MongoClientSession:
    def __init__(self, url: str, database: str, name: str, op_timeout_s: float):
        self.name = name
        self.mongo = mongodb.client(url, timeout_ms=int(op_timeout_s * 1000))
        self.jobs = self.mongo[database][TABLE]
        self.workflows = self.mongo[database]["repro_workflows"]

    def write(self, seq: int) -> None:
        self.jobs.insert_one({"owner": self.name, "status": "queued", "payload": f"job {seq}",
                              "created_at": dt.datetime.now(dt.UTC), "attempts": 0})

    def read(self, seq: int) -> None:
        job = self.jobs.find_one({"owner": "seed", "status": "queued"}, {"status": 1},
                                 sort=[("_id", 1)], skip=_seed_id(seq) % 500)
        if job is not None:
            self.workflows.find_one({"job_id": job["_id"]})

    def close(self) -> None:
        self.mongo.close()


class MongoBatch:
    def __init__(self, url: str, database: str):
        self.mongo = mongodb.client(url, timeout_ms=60000)
        self.jobs = self.mongo[database][TABLE]
        self.cancelled = threading.Event()

    def run(self, hold_s: float) -> int:
        deadline = time.monotonic() + hold_s
        written = 0
        while True:  # a batch job: multi-document writes back to back for hold_s
            written += self.jobs.update_many({"owner": "batch"},
                                             {"$inc": {"attempts": 1}}).modified_count
            if time.monotonic() >= deadline or self.cancelled.is_set():
                return written

    def cancel(self) -> None:
        self.cancelled.set()

    def close(self) -> None:
        self.mongo.close()


class MongoSampler:
    def __init__(self, url: str):
        self.mongo = mongodb.client(url, timeout_ms=SAMPLER_TIMEOUT_MS)

    def sample(self) -> dict[str, Any]:
        s = mongodb.ticket_sample(self.mongo)
        return {"source": "serverStatus", **asdict(s), "exhausted": s.exhausted}

    def close(self) -> None:
        self.mongo.close()


class MongoDriver:
    kind = "mongodb"

    def __init__(self, url: str, database: str, op_timeout_s: float):
        self.url = url
        self.database = database
        self.op_timeout_s = op_timeout_s

    def prepare(self) -> None:
        from pymongo import ASCENDING

        with mongodb.client(self.url, timeout_ms=ADMIN_TIMEOUT_MS) as mongo:
            db = mongo[self.database]
            for name in ("repro_jobs", "repro_workflows"):
                db.drop_collection(name)
            for coll, name, keys in INDEXES:
                db[coll].create_index([(k, ASCENDING) for k in keys], name=name)
            now = dt.datetime.now(dt.UTC)
            ids = db[TABLE].insert_many([
                {"owner": "batch" if i < BATCH_ROWS else "seed",
                 "status": "done" if i % 3 == 0 else "queued", "payload": f"seed {i}",
                 "created_at": now, "attempts": 0} for i in range(SEED_JOBS)]).inserted_ids
            db["repro_workflows"].insert_many([{"job_id": i, "state": "pending"} for i in ids])

    def drop(self) -> None:
        with mongodb.client(self.url, timeout_ms=ADMIN_TIMEOUT_MS) as mongo:
            for name in ("repro_jobs", "repro_workflows"):
                mongo[self.database].drop_collection(name)

    def client(self, name: str) -> Client:
        return MongoClientSession(self.url, self.database, name, self.op_timeout_s)

    def batch(self) -> Batch:
        return MongoBatch(self.url, self.database)

    def sampler(self) -> Sampler:
        return MongoSampler(self.url)
