"""backlog_drain: "resolved" declared while the backlog still waits (postmortem 002)."""

from repro.backlog_drain.config import BacklogDrainConfig
from repro.harness.spec import Figure, IncidentSpec, Prefix

SPEC = IncidentSpec(
    name="backlog_drain", marker="backlog_drain", postmortem="002",
    summary="the incident is declared resolved when jobs flow again, while the backlog "
            "still waits",
    schema=BacklogDrainConfig, prefix=Prefix("resolution", "backlog_drain/prefix.py"),
    backends=("postgresql",),
    not_on={b: "its queue and replicas are PostgreSQL servers on the runner's loopback, not "
            "machines" for b in ("docker", "qemu", "ec2", "ssh")},
    headline=(Figure("queued_at_declaration"), Figure("oldest_at_declaration_s", "s"),
              Figure("recovery_s", "s"), Figure("declaration_lag_s", "s")),
    panels=("reachability", "queue", "oldest", "resolution"),
)
