"""The EC2 janitor: terminate repro instances that outlived their expiry or their run.

Model: every instance the ec2 backend launches carries repro:run,
repro:expires (UTC) and repro:owner (the launching machine). Two rules:

  expired   past repro:expires (or with no readable expiry): terminated by
            anyone, from any machine (`janitor()`, also run on a schedule:
            `python -m repro.harness.hosts.ec2.janitor` in cron or CI, docs/ec2.md)
  orphaned  launched by *this* machine for a run that is no longer alive:
            terminated at the next run's start (`reap(all_runs=False)`), and
            every instance of this machine by `repro cleanup` (all_runs=True)

Instances another machine launched and that have not expired are never
touched: in a shared account they belong to someone's live run.

The region is the backend's (`resolve_region`: REPRO_EC2_REGION, then
AWS_REGION, then AWS_DEFAULT_REGION), so cleanup looks where the backend
launched. `reap` does nothing when none of them is set (runs that never use
EC2 never call AWS); when AWS cannot be asked (no credentials, no answer,
access refused) it says so in one line on stderr and removes nothing, so a
machine with AWS_REGION set but no AWS access still starts its runs.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

from repro.harness.hosts.ec2 import (
    REGION_VARS,
    TAG_EXPIRES,
    TAG_OWNER,
    TAG_RUN,
    Ec2Settings,
    client,
    owner_id,
    resolve_region,
    tagged,
    tags_of,
    terminate,
)

REAPABLE_STATES = ("pending", "running", "stopping", "stopped")


def expired(ec2: Any, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Tagged instances past their repro:expires (or with an unreadable one), any owner."""
    now = now or dt.datetime.now(dt.UTC)
    out = []
    for inst in tagged(ec2, REAPABLE_STATES):
        stamp = tags_of(inst).get(TAG_EXPIRES, "")
        try:
            due = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            due = now  # no valid expiry: treat as expired, never as immortal
        if due <= now:
            out.append(inst)
    return out


def janitor(ec2: Any, now: dt.datetime | None = None) -> list[str]:
    """Terminate every expired repro instance; returns what it terminated."""
    return terminate(ec2, [i["InstanceId"] for i in expired(ec2, now)])


def reap(all_runs: bool, live_run_ids: set[str]) -> list[str]:
    """`repro cleanup` / run start: expired instances, and this machine's dead runs' ones."""
    region, source = resolve_region()
    if not region:
        return []  # EC2 not in use here: never call AWS
    from repro.harness.extras import have
    if not have("boto3"):
        print(f"repro: EC2 instances in {region} (from {source}) not checked: boto3 is not "
              "installed (pip install 'pytest-repro[ec2]')", file=sys.stderr)
        return []
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        return _reap_region(client(Ec2Settings(region=region)), all_runs, live_run_ids)
    except (BotoCoreError, ClientError) as exc:
        print(f"repro: EC2 instances in {region} (from {source}) not checked: "
              f"{str(exc).splitlines()[0]}", file=sys.stderr)
        return []


def _reap_region(ec2: Any, all_runs: bool, live_run_ids: set[str]) -> list[str]:
    doomed = {i["InstanceId"]: tags_of(i).get(TAG_RUN, "?") for i in expired(ec2)}
    for inst in tagged(ec2, REAPABLE_STATES, [{"Name": f"tag:{TAG_OWNER}",
                                                "Values": [owner_id()]}]):
        run_id = tags_of(inst).get(TAG_RUN, "")
        if all_runs or run_id not in live_run_ids:
            doomed[inst["InstanceId"]] = run_id
    return [f"ec2 instance {iid} (run {doomed[iid]})" for iid in terminate(ec2, list(doomed))]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m repro.harness.hosts.ec2.janitor`: for a scheduled job (cron, CI), per region."""
    import argparse
    argparse.ArgumentParser(prog="python -m repro.harness.hosts.ec2.janitor",
                            description="terminate expired repro instances in the region "
                            f"of {' / '.join(REGION_VARS)}").parse_args(argv)
    region, _ = resolve_region()
    if not region:
        print(f"repro ec2 janitor: set {' or '.join(REGION_VARS)}", file=sys.stderr)
        return 2
    for iid in janitor(client(Ec2Settings(region=region))):
        print(f"terminated {iid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
