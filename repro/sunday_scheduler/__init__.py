"""sunday_scheduler: the dead man's switch misfires on Sunday (postmortem 000, interlude)."""

from repro.harness.spec import Figure, HostNeeds, IncidentSpec, Prefix
from repro.sunday_scheduler.config import SundaySchedulerConfig

SPEC = IncidentSpec(
    name="sunday_scheduler", marker="sunday_scheduler", postmortem="000, interlude",
    summary="a heartbeat job that never runs on Sundays (0- vs 1-based weekdays): the dead "
            "man's switch evicts live servers",
    schema=SundaySchedulerConfig, prefix=Prefix("scheduler", "sunday_scheduler/prefix.sh"),
    backends=("docker",),
    not_on={"qemu": "a guest's kernel clock can be set (the clock fault does it, date -s) "
                    "but not run 120x faster: a week of midnights would take a week",
            "ec2": "not validated on EC2 yet (the kernel clock path, as on QEMU)",
            "ssh": "not validated on existing machines yet"},
    hosts=HostNeeds(roles=tuple(f"srv-{i}" for i in range(7))),  # one per midnight
    headline=(Figure("misfires"), Figure("week_clock_covered_h", "h")),
    panels=("fires", "evictions"),
)
