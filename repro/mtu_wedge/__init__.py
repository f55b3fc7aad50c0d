"""mtu_wedge: build servers vanish from the network under 20 concurrent ssh streams."""

from repro.harness.spec import Figure, HostNeeds, IncidentSpec, Prefix
from repro.mtu_wedge.config import MtuWedgeConfig

SPEC = IncidentSpec(
    name="mtu_wedge", marker="mtu", postmortem="000, issue #2",
    summary="hosts drop off the network under 20 concurrent ssh streams",
    schema=MtuWedgeConfig, prefix=Prefix("host_init", "mtu_wedge/prefix.sh"),
    backends=("docker", "qemu", "ec2", "ssh"),
    hosts=HostNeeds(roles=("target", "client")),
    headline=(Figure("longest_gap_s", "s"), Figure("streams_up"), Figure("streams_asked"),
              Figure("mb_moved", "MB")),
    panels=("reachability", "latency", "throughput"),
)
