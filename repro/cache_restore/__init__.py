"""cache_restore: a build cache piped into every container over ssh; a cut stream loses data."""

from repro.cache_restore.config import CacheRestoreConfig
from repro.harness.spec import Figure, HostNeeds, IncidentSpec, Prefix

SPEC = IncidentSpec(
    name="cache_restore", marker="cache_restore", postmortem="000, issue #2",
    summary="restore cache: a tarball piped into N containers over ssh; a stream cut "
            "mid-way is lost behind exit 0",
    schema=CacheRestoreConfig, prefix=Prefix("restore", "cache_restore/prefix.sh"),
    backends=("docker",),
    not_on={"qemu": "13 TCG guests would take minutes to boot and log in",
            "ec2": "13 instances per run: not validated",
            "ssh": "needs 13 machines and resets connections on them: not validated"},
    hosts=HostNeeds(roles=("build", "t01", "t02", "...")),
    headline=(Figure("files_lost"), Figure("targets_complete"), Figure("exit_code"),
              Figure("elapsed_s", "s"), Figure("peak_streams")),
    panels=("reachability", "restore"),
)
