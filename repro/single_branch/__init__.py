"""single_branch: a shallow checkout of a non-master commit (the "bunk git upgrade")."""

from repro.harness.spec import Figure, HostNeeds, IncidentSpec, Prefix
from repro.single_branch.config import SingleBranchConfig

SPEC = IncidentSpec(
    name="single_branch", marker="single_branch", postmortem="000, interlude",
    summary="shallow clones became --single-branch: non-master builds cannot reach their commit",
    schema=SingleBranchConfig, prefix=Prefix("checkout", "single_branch/prefix.sh"),
    backends=("docker", "qemu", "ec2"),
    not_on={"ssh": "not validated on existing machines yet (it serves git from one of them)"},
    hosts=HostNeeds(roles=("gitserver", "build")),
    headline=(Figure("shapes_failing"), Figure("shapes_tried")),
    panels=(),  # no probes or timed operations: the fault windows over an events lane
)
