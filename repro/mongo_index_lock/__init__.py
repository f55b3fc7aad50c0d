"""mongo_index_lock: index re-declaration storms stall the database (postmortem 002)."""

from repro.harness.spec import Figure, IncidentSpec, Prefix
from repro.mongo_index_lock.config import MongoIndexLockConfig

SPEC = IncidentSpec(
    name="mongo_index_lock", marker="mongo", postmortem="002",
    summary="a deploy storm re-declaring existing indexes stalls every writer",
    schema=MongoIndexLockConfig, prefix=Prefix("service_startup", "mongo_index_lock/prefix.py"),
    backends=("postgresql", "mongodb"),
    not_on={b: "its hosts are database servers on loopback, not machines"
            for b in ("docker", "qemu", "ec2", "ssh")},
    headline=(Figure("longest_stall_ms", "ms"), Figure("p99_ms", "ms"),
              Figure("max_lock_waiters"), Figure("instances_started")),
    panels=("latency",),
)
