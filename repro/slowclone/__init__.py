"""slowclone: the build's checkout step under heavy packet loss (postmortem issue #1)."""

from repro.harness.spec import Figure, HostNeeds, IncidentSpec, Prefix
from repro.slowclone.config import SlowcloneConfig

SPEC = IncidentSpec(
    name="slowclone", marker="slowclone", postmortem="000, issue #1",
    summary="the build's checkout hangs for hours under heavy packet loss",
    schema=SlowcloneConfig, prefix=Prefix("checkout", "slowclone/prefix.sh"),
    backends=("docker", "qemu", "ec2"),
    not_on={"ssh": "not validated on existing machines yet: its loss fault acts on the "
                   "machine's real interface"},
    hosts=HostNeeds(roles=("gitserver", "build")),
    headline=(Figure("loss_target", "fraction"), Figure("under_loss_s", "s"),
              Figure("under_loss_exit"), Figure("longest_retransmission_gap_s", "s")),
    panels=(),  # no probes or timed operations: the fault windows over an events lane
)
