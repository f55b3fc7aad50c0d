"""blackhole_replica: replicas that accept but never answer back up their callers (002)."""

from repro.blackhole_replica.config import BlackholeReplicaConfig
from repro.harness.spec import Figure, IncidentSpec, Prefix

SPEC = IncidentSpec(
    name="blackhole_replica", marker="blackhole_replica", postmortem="002",
    summary="a read replica that accepts connections but never answers backs up its callers",
    schema=BlackholeReplicaConfig, prefix=Prefix("caller", "blackhole_replica/prefix.py"),
    backends=("postgresql",),
    not_on={b: "its replicas are PostgreSQL servers on the runner's loopback, frozen in a "
            "freezer cgroup of the runner, not machines" for b in ("docker", "qemu", "ec2", "ssh")},
    headline=(Figure("p99_ms", "ms"), Figure("success"), Figure("max_in_flight"),
              Figure("recovery_s", "s")),
    panels=("reachability", "latency", "in_flight", "served"),
)
