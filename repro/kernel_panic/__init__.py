"""kernel_panic: build servers panic under concurrent disk filling (postmortem 000, issue #0)."""

from repro.harness.spec import Figure, HostNeeds, IncidentSpec, Prefix
from repro.kernel_panic.config import KernelPanicConfig

SPEC = IncidentSpec(
    name="kernel_panic", marker="kernel_panic", postmortem="000, issue #0",
    summary="build servers panic under concurrent disk filling (LVM snapshot + resize2fs)",
    schema=KernelPanicConfig, prefix=Prefix("volume_setup", "kernel_panic/prefix.sh"),
    backends=("qemu",),
    not_on={"docker": "containers share the runner's kernel (a panic would be the runner's) "
                      "and this kernel has no device mapper for LVM snapshots",
            "ec2": "the scenario reads the guest's serial console and a second disk, which "
                   "only the qemu backend gives it",
            "ssh": "it panics its host on purpose and needs a console and a spare disk: "
                   "never an existing machine"},
    hosts=HostNeeds(roles=("build",), own_kernel=True, extra_disks=1),
    headline=(Figure("kernel_findings"), Figure("reboots"), Figure("longest_gap_s", "s"),
              Figure("fill_reached", "fraction")),
    panels=("reachability", "latency"),
)
