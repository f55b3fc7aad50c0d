"""leader_deadman: the leader dies and nobody takes over (postmortem 000, issue #0)."""

from repro.harness.spec import Figure, HostNeeds, IncidentSpec, Prefix
from repro.leader_deadman.config import LeaderDeadmanConfig

SPEC = IncidentSpec(
    name="leader_deadman", marker="leader_deadman", postmortem="000, issue #0",
    summary="the leader (the newest booted server) dies and nobody takes over: the "
            "cluster goes static",
    schema=LeaderDeadmanConfig, prefix=Prefix("agent", "leader_deadman/prefix.sh"),
    backends=("docker",),
    not_on={"qemu": "four TCG guests (etcd and three servers) on this machine's 2 cores "
                    "would starve the agents' one-second decisions; the kill, pause and "
                    "partition faults themselves work on QEMU guests",
            "ec2": "not validated on EC2 yet", "ssh": "not validated on existing machines "
            "yet (it kills and pauses whole hosts)"},
    hosts=HostNeeds(roles=("etcd", "srv-0", "srv-1", "srv-2")),
    headline=(Figure("takeover_s", "s"), Figure("static_s", "s")),
    panels=("decisions", "reachability"),
)
