"""container_awareness: a JVM update's container support shrinks the pools and the throughput."""

from repro.container_awareness.config import ContainerAwarenessConfig
from repro.harness.spec import Figure, HostNeeds, IncidentSpec, Prefix

SPEC = IncidentSpec(
    name="container_awareness", marker="container_awareness", postmortem="002",
    summary="JVM container support sizes thread and connection pools from the CPU quota: "
            "throughput drops",
    schema=ContainerAwarenessConfig, prefix=Prefix("java_options",
                                                   "container_awareness/prefix.options"),
    backends=("docker",),
    not_on={"qemu": "the subject is a container's CPU quota (a guest's vCPUs are no quota)",
            "ec2": "the subject is a container's CPU quota; an instance has none",
            "ssh": "the subject is a container's CPU quota, set by the harness at start"},
    hosts=HostNeeds(roles=("service", "downstream")),
    headline=(Figure("delivered_fraction"), Figure("delivered_rps", "requests/s"),
              Figure("available_processors"), Figure("connections"), Figure("p99_ms", "ms"),
              Figure("runner_cpus"), Figure("detected_processors")),
    panels=("latency", "requests", "pools"),
)
