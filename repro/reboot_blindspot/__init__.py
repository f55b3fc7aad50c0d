"""reboot_blindspot: a server kernel-panics and reboots in seconds; the monitoring never pages
(postmortem 000, issue #0)."""

from repro.harness.spec import Figure, HostNeeds, IncidentSpec, Prefix
from repro.reboot_blindspot.config import RebootBlindspotConfig

SPEC = IncidentSpec(
    name="reboot_blindspot", marker="reboot_blindspot", postmortem="000, issue #0",
    summary="a server kernel-panics and is back 'up' in seconds: an `up == 0 for 1m` alert "
            "never pages (Prometheus scraping a QEMU guest's node exporter)",
    schema=RebootBlindspotConfig, prefix=Prefix("rules", "reboot_blindspot/prefix.yml"),
    backends=("qemu",),
    not_on={"docker": "it panics its host's kernel: containers share the runner's",
            "ec2": "the scenario reads the guest's serial console to confirm the panic and the "
                   "reboot, which only the qemu backend gives it",
            "ssh": "it crashes its host's kernel on purpose: never an existing machine"},
    hosts=HostNeeds(roles=("server",), own_kernel=True),
    headline=(Figure("down_s", "s"), Figure("alert_after_s", "s"), Figure("max_alert_s", "s")),
    panels=("reachability", "heartbeat", "reboot", "alert"),
)
