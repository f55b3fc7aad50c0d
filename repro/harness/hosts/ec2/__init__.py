"""EC2 hosts: instances from an AMI, reached over SSH, terminated however the run ends.

Model: `Ec2Provider(image=AMI).hosts(run, roles)` launches one instance per role
in a single `run_instances` call (all or none), tagged at launch with

  repro:run      the run id (what `repro cleanup` and the janitor look for)
  repro:expires  UTC time after which the instance is garbage, whoever owns it
  repro:owner    the machine that launched it (cleanup only touches its own)
  repro:role, Name = repro-<short>-<role>

and `InstanceInitiatedShutdownBehavior=terminate`. Its user data (run as root at
first boot) installs the run's public key for root and arms a dead man's
switch: a timer that powers the instance off at expiry, which (by that
setting) terminates it even if the runner vanished and never came back. A
host is ready when sshd accepts a login with the run's key (SSH through
paramiko/fabric, as for QEMU guests). Leaving the context, also after a
failed start or Ctrl-C, saves each console output and terminates every
instance it launched.

Three guards keep cost bounded: the hard cap (`max_instances`, counted over
every repro-tagged pending or running instance of the account and region,
checked before and after launching: a launch that would exceed it is
refused or rolled back), the expiry (repro.harness.hosts.ec2.janitor terminates
tagged instances past `repro:expires`, from any machine), and the on-host
switch. Settings come from the environment (docs/ec2.md); botocore itself
honours AWS_ENDPOINT_URL_EC2 (moto's server in the tests). The region has one
source for the backend, the janitor, `repro cleanup` and the doctor:
`resolve_region()`, the first of REPRO_EC2_REGION, AWS_REGION,
AWS_DEFAULT_REGION that is set. A malformed setting is one ConfigError line
naming its variable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import shlex
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro.harness.errors import ConfigError, PrerequisiteError, ProvisionError
from repro.harness.hosts.base import IMAGES, Host
from repro.harness.hosts.sshhost import SshAuth, SshCommander, SshEndpoint, SshHostBase
from repro.harness.hosts.sshlogin import SSH_CLIENT_CONFIG, connection, wait_for_login

if TYPE_CHECKING:
    import fabric

    from repro.harness.run import Run

TAG_RUN, TAG_EXPIRES, TAG_OWNER, TAG_ROLE = "repro:run", "repro:expires", "repro:owner", \
    "repro:role"
LIVE_STATES = ("pending", "running")
POLL_S = 2.0
ENV = {"region": "REPRO_EC2_REGION", "ami": "REPRO_EC2_AMI",
       "instance_type": "REPRO_EC2_INSTANCE_TYPE", "subnet": "REPRO_EC2_SUBNET",
       "security_groups": "REPRO_EC2_SECURITY_GROUPS", "address": "REPRO_EC2_ADDRESS",
       "max_instances": "REPRO_EC2_MAX_INSTANCES", "ttl_min": "REPRO_EC2_TTL_MIN",
       "launch_timeout_s": "REPRO_EC2_LAUNCH_TIMEOUT_S",
       "login_timeout_s": "REPRO_EC2_LOGIN_TIMEOUT_S"}
REGION_VARS = (ENV["region"], "AWS_REGION", "AWS_DEFAULT_REGION")  # first set wins
ADDRESSES = ("private", "public")


def resolve_region(env: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(region, the variable it came from): the first of REGION_VARS set, ("", "") if none.

    The one place the region is decided: backend, janitor, cleanup and doctor use it."""
    for var in REGION_VARS:
        if env.get(var, "").strip():
            return env[var].strip(), var
    return "", ""


@dataclass(frozen=True)
class Ec2Settings:
    region: str = ""
    ami: str = ""
    instance_type: str = "t3.small"
    subnet: str = ""                      # default VPC's default subnet when empty
    security_groups: tuple[str, ...] = ()  # must allow tcp/22 from the runner
    address: str = "private"              # which address the runner uses: private or public
    max_instances: int = 8                # hard cap over every repro instance in the region
    ttl_min: float = 120.0                # expiry tag and on-host shutdown timer
    launch_timeout_s: float = 300.0
    login_timeout_s: float = 300.0

    @staticmethod
    def from_env(env: Mapping[str, str] = os.environ, ami: str = "") -> Ec2Settings:
        values: dict[str, Any] = {"region": resolve_region(env)[0]}
        for f in fields(Ec2Settings):
            raw = env.get(ENV[f.name], "")
            if raw and f.name != "region":
                values[f.name] = _parse_setting(f.name, raw)
        settings = Ec2Settings(**values)
        settings.check()
        return replace(settings, ami=ami) if ami else settings

    def check(self) -> None:
        """Raise one ConfigError line (naming the variable) for a value out of range."""
        rules = [("ami", "an AMI id (ami-...)",
                  not self.ami or re.fullmatch(IMAGES["ec2"][1], self.ami) is not None),
                 ("address", " or ".join(ADDRESSES), self.address in ADDRESSES),
                 ("max_instances", "at least 1", self.max_instances >= 1)]
        rules += [(name, "a positive number", 0 < getattr(self, name) < math.inf)
                  for name in ("ttl_min", "launch_timeout_s", "login_timeout_s")]
        for name, want, ok in rules:
            if not ok:
                raise ConfigError(f"must be {want}, got {getattr(self, name)!r} (docs/ec2.md)",
                                  key=ENV[name])

    def missing(self) -> list[str]:
        return [ENV[k] for k in ("region", "ami") if not getattr(self, k)]


def _parse_setting(name: str, raw: str) -> Any:
    """One REPRO_EC2_* value as its field's type (security groups: comma-separated)."""
    if name == "security_groups":
        return tuple(x.strip() for x in raw.split(",") if x.strip())
    kind = type(getattr(Ec2Settings(), name))
    try:
        return kind(raw)
    except ValueError as exc:
        what = {int: "an integer", float: "a number"}.get(kind, kind.__name__)
        raise ConfigError(f"expected {what}, got {raw!r} (docs/ec2.md)",
                          key=ENV[name]) from exc


def client(settings: Ec2Settings) -> Any:
    from repro.harness.extras import need
    boto3 = need("boto3")
    from botocore.config import Config
    cfg = Config(region_name=settings.region, connect_timeout=10, read_timeout=30,
                 retries={"max_attempts": 4, "mode": "standard"})
    return boto3.client("ec2", config=cfg)


def owner_id() -> str:
    return socket.gethostname()


def user_data(public_key_line: str, run_id: str, ttl_s: float, expires: str) -> str:
    """First-boot script: the run's key for root, and the dead man's switch."""
    secs = max(int(ttl_s), 1)
    return f"""#!/bin/sh
# repro run {run_id}: login key and dead man's switch (instance expires {expires})
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then
    systemd-run --unit=repro-deadman --on-active={secs}s /bin/systemctl poweroff --force
else
    nohup sh -c 'sleep {secs}; poweroff -f || halt -f' >/dev/null 2>&1 &
fi
install -d -m 700 /root/.ssh
printf '%s\\n' {shlex.quote(public_key_line)} > /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
if [ -d /etc/ssh/sshd_config.d ]; then
    echo 'PermitRootLogin prohibit-password' > /etc/ssh/sshd_config.d/00-repro.conf
    (systemctl reload ssh || systemctl reload sshd) >/dev/null 2>&1 || true
fi
"""


def tagged(ec2: Any, states: Sequence[str], extra: Sequence[dict[str, Any]] = ()
           ) -> list[dict[str, Any]]:
    """Every instance carrying repro:run in the given states (paginated)."""
    filters = [{"Name": "tag-key", "Values": [TAG_RUN]},
               {"Name": "instance-state-name", "Values": list(states)}, *extra]
    found = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            found += reservation["Instances"]
    return found


def tags_of(instance: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


@dataclass
class Ec2Host(SshHostBase):
    name: str
    role: str
    address: str
    instance_id: str
    key_path: Path
    console_path: Path
    _ssh: SshCommander | None = field(default=None, repr=False)

    def _commander(self) -> SshCommander:
        if self._ssh is None:
            self._ssh = SshCommander(SshEndpoint(self.address), SshAuth(self.key_path))
        return self._ssh

    def url(self) -> str:
        return f"ec2://{self.instance_id}"

    def console(self) -> Path | None:
        return self.console_path if self.console_path.exists() else None

    def ssh(self) -> fabric.Connection:
        return connection(self.address, self.key_path)


class Ec2Provider:
    name = "ec2"

    def __init__(self, image: str = "", settings: Ec2Settings | None = None):
        self.settings = settings or Ec2Settings.from_env(ami=image)
        if image and settings:
            self.settings = replace(settings, ami=image)

    @contextlib.contextmanager
    def hosts(self, run: Run, roles: Sequence[str]) -> Iterator[dict[str, Host]]:
        s = self.settings
        if s.missing():
            raise PrerequisiteError(f"EC2 is not configured ({', '.join(s.missing())} unset)",
                                    "set them (docs/ec2.md) or pass --repro-provider ec2:AMI")
        ec2 = client(s)
        _check_cap(ec2, s, len(roles))
        ids: list[str] = []
        started: list[Ec2Host] = []
        try:
            ids = _launch(ec2, s, run, roles)
            for role, iid in zip(roles, ids, strict=True):
                ec2.create_tags(Resources=[iid], Tags=[{"Key": "Name", "Value": run.name(role)},
                                                       {"Key": TAG_ROLE, "Value": role}])
            _check_cap(ec2, s, 0)  # another run launched meanwhile: roll ours back
            addresses = _wait_running(ec2, s, ids)
            consoles = run.reports / "hosts"
            consoles.mkdir(parents=True, exist_ok=True)
            for role, iid in zip(roles, ids, strict=True):
                name = run.name(role)
                started.append(Ec2Host(name, role, addresses[iid], iid, run.key.private_path,
                                       consoles / f"{name}.console.log"))
            with ThreadPoolExecutor(max_workers=max(1, len(started))) as pool:
                list(pool.map(lambda h: _ready(h, run, s.login_timeout_s), started))
            yield {h.role: h for h in started}
        finally:
            for h in started:
                h.close()
                _save_console(ec2, h)
            terminate(ec2, ids)


def _ready(host: Ec2Host, run: Run, timeout: float) -> None:
    """A login with the run's key, then that key for host-to-host ssh inside the run."""
    wait_for_login(host.address, host.key_path, timeout)
    host.put(run.key.private_bytes, "/root/.ssh/id_ed25519", 0o600)
    host.put(SSH_CLIENT_CONFIG.encode(), "/root/.ssh/config", 0o600)


def _check_cap(ec2: Any, s: Ec2Settings, adding: int) -> None:
    live = tagged(ec2, LIVE_STATES)
    if len(live) + adding > s.max_instances:
        raise ProvisionError(
            f"EC2 cap: {len(live)} repro instance(s) live + {adding} asked > max_instances "
            f"{s.max_instances} (REPRO_EC2_MAX_INSTANCES); `repro cleanup` or wait for expiry")


def _launch(ec2: Any, s: Ec2Settings, run: Run, roles: Sequence[str]) -> list[str]:
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=s.ttl_min)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    common = [{"Key": TAG_RUN, "Value": run.run_id}, {"Key": TAG_EXPIRES, "Value": expires},
              {"Key": TAG_OWNER, "Value": owner_id()}]
    args: dict[str, Any] = {
        "ImageId": s.ami, "InstanceType": s.instance_type, "MinCount": len(roles),
        "MaxCount": len(roles), "InstanceInitiatedShutdownBehavior": "terminate",
        "UserData": user_data(run.key.public_line, run.run_id, s.ttl_min * 60, expires),
        "TagSpecifications": [{"ResourceType": "instance", "Tags": common},
                              {"ResourceType": "volume", "Tags": common}]}
    if s.subnet:
        args["SubnetId"] = s.subnet
    if s.security_groups:
        args["SecurityGroupIds"] = list(s.security_groups)
    try:
        ids = [i["InstanceId"] for i in ec2.run_instances(**args)["Instances"]]
    except Exception as exc:  # botocore's ClientError and friends
        raise ProvisionError(f"run_instances from {s.ami} failed: {exc}") from exc
    return ids


def _wait_running(ec2: Any, s: Ec2Settings, ids: list[str]) -> dict[str, str]:
    """instance id -> address once every instance runs (raises if one ends instead)."""
    key = "PublicIpAddress" if s.address == "public" else "PrivateIpAddress"
    deadline = time.monotonic() + s.launch_timeout_s
    while True:
        found = {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=ids)
                 ["Reservations"] for i in r["Instances"]}
        gone = [f"{k} {v['State']['Name']}" for k, v in found.items()
                if v["State"]["Name"] not in LIVE_STATES]
        if gone:
            raise ProvisionError(f"instance(s) did not start: {', '.join(gone)}")
        if all(v["State"]["Name"] == "running" and v.get(key) for v in found.values()) \
                and len(found) == len(ids):
            return {k: v[key] for k, v in found.items()}
        if time.monotonic() > deadline:
            raise ProvisionError(f"instances not running with a {key} within "
                                 f"{s.launch_timeout_s:.0f} s: {', '.join(ids)}")
        time.sleep(POLL_S)  # polling the API for a state, not synchronising


def _save_console(ec2: Any, host: Ec2Host) -> None:
    with contextlib.suppress(Exception):
        out = ec2.get_console_output(InstanceId=host.instance_id, Latest=True).get("Output")
        if out:
            host.console_path.write_text(out)


def terminate(ec2: Any, ids: Sequence[str]) -> list[str]:
    if not ids:
        return []
    res = ec2.terminate_instances(InstanceIds=list(ids))
    return [t["InstanceId"] for t in res["TerminatingInstances"]]
