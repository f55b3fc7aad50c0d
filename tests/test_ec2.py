"""The ec2 backend against moto's server (the API) with Docker containers as the
instances' bodies (tests/ec2cloud.py): life cycle, failed starts, the cap, the
dead man's switch, expiry and the janitor, and what `repro cleanup` touches; the
region comes from one place (resolve_region) for the backend, janitor and cleanup."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from repro.harness import cleanup, cli
from repro.harness.errors import ConfigError, PrerequisiteError, ProvisionError
from repro.harness.hosts import ec2 as ec2mod
from repro.harness.hosts.base import get_provider
from repro.harness.hosts.ec2 import REGION_VARS, Ec2Provider, Ec2Settings, resolve_region
from repro.harness.hosts.ec2 import janitor as ec2_janitor
from repro.harness.run import Run, start_run
from tests.ec2cloud import FakeCloud, moto_server
from tests.leftovers import leftovers

REGIONS = itertools.cycle(["eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "us-east-2",
                           "us-west-1", "us-west-2", "ca-central-1", "ap-south-1", "sa-east-1"])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        with moto_server() as url:
            yield url


@pytest.fixture
def aws(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Credentials and endpoint for moto only; a fresh region per test keeps state apart."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", *REGION_VARS):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", endpoint)
    return next(REGIONS)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    r = start_run(tmp_path / "reports")
    yield r
    r.close()


@pytest.fixture
def cloud(aws: str, run: Run) -> Iterator[FakeCloud]:
    c = FakeCloud(run, aws).start()
    yield c
    c.close()
    assert not c.errors, c.errors
    assert leftovers(run.short) == [f"scratch /tmp/{run.name()}"]


def settings(cloud: FakeCloud, ami: str, **changes: object) -> Ec2Settings:
    base = Ec2Settings(region=cloud.region, ami=ami, subnet=cloud.subnet_id, max_instances=4,
                       ttl_min=30, launch_timeout_s=30, login_timeout_s=30)
    return Ec2Settings(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def instances(cloud: FakeCloud) -> list[dict]:
    return [i for r in cloud.ec2.describe_instances()["Reservations"] for i in r["Instances"]]


def wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)  # condition poll


# ---- no AWS at all -----------------------------------------------------------------------
def test_settings_come_from_the_environment() -> None:
    env = {"REPRO_EC2_REGION": "eu-west-1", "REPRO_EC2_AMI": "ami-0123456789abcdef0",
           "REPRO_EC2_SECURITY_GROUPS": "sg-1,sg-2", "REPRO_EC2_MAX_INSTANCES": "3",
           "REPRO_EC2_TTL_MIN": "45"}
    s = Ec2Settings.from_env(env)
    assert (s.region, s.ami, s.security_groups, s.max_instances, s.ttl_min) == (
        "eu-west-1", "ami-0123456789abcdef0", ("sg-1", "sg-2"), 3, 45.0)
    assert Ec2Settings.from_env({"AWS_REGION": "us-east-2"}, ami="ami-1").missing() == []
    assert Ec2Settings.from_env({}).missing() == ["REPRO_EC2_REGION", "REPRO_EC2_AMI"]


@pytest.mark.parametrize(("env", "says"), [
    ({"REPRO_EC2_MAX_INSTANCES": "many"}, "REPRO_EC2_MAX_INSTANCES: expected an integer"),
    ({"REPRO_EC2_MAX_INSTANCES": "0"}, "REPRO_EC2_MAX_INSTANCES: must be at least 1"),
    ({"REPRO_EC2_TTL_MIN": "nan"}, "REPRO_EC2_TTL_MIN: must be a positive number"),
    ({"REPRO_EC2_LAUNCH_TIMEOUT_S": "0"}, "REPRO_EC2_LAUNCH_TIMEOUT_S: must be a positive"),
    ({"REPRO_EC2_ADDRESS": "elastic"}, "REPRO_EC2_ADDRESS: must be private or public"),
    ({"REPRO_EC2_AMI": "debian-12"}, "REPRO_EC2_AMI: must be an AMI id"),
])
def test_a_malformed_setting_is_a_config_error_naming_its_variable(
        env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as err:
        Ec2Settings.from_env(env)
    assert str(err.value).startswith(says) and "\n" not in str(err.value)


@pytest.mark.parametrize(("env", "expected"), [
    ({}, ("", "")),
    ({"AWS_DEFAULT_REGION": "us-west-2"}, ("us-west-2", "AWS_DEFAULT_REGION")),
    ({"AWS_DEFAULT_REGION": "us-west-2", "AWS_REGION": "us-east-2"},
     ("us-east-2", "AWS_REGION")),
    ({"AWS_DEFAULT_REGION": "us-west-2", "AWS_REGION": "us-east-2",
      "REPRO_EC2_REGION": "eu-west-1"}, ("eu-west-1", "REPRO_EC2_REGION")),
    ({"REPRO_EC2_REGION": " ", "AWS_REGION": "us-east-2"}, ("us-east-2", "AWS_REGION")),
])
def test_the_region_is_the_first_of_repro_then_aws_then_aws_default(
        env: dict[str, str], expected: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_region(env) == expected
    assert Ec2Settings.from_env(env).region == expected[0]  # the backend's settings
    for var in REGION_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert resolve_region() == expected  # the janitor, cleanup and doctor read os.environ


def test_a_region_without_aws_access_is_one_line_and_the_run_still_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """AWS_REGION set in a shell with no credentials: reap says so, removes nothing."""
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN", *REGION_VARS):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:9")  # nothing listens there
    assert ec2_janitor.reap(all_runs=False, live_run_ids=set()) == []
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("repro: EC2 instances in eu-north-1 (from AWS_REGION) not checked")


def test_provider_spec_carries_the_ami(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_EC2_REGION", "eu-west-1")
    provider = get_provider("ec2:ami-0123456789abcdef0")
    assert isinstance(provider, Ec2Provider)
    assert provider.settings.ami == "ami-0123456789abcdef0"


def test_unconfigured_ec2_is_a_prerequisite_error_and_reap_never_calls_aws(
        run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in REGION_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(PrerequisiteError, match="REPRO_EC2_AMI"), \
            Ec2Provider(settings=Ec2Settings(region="eu-west-1")).hosts(run, ["a"]):
        pass
    assert ec2_janitor.reap(all_runs=True, live_run_ids=set()) == []


# ---- against moto ------------------------------------------------------------------------

@pytest.mark.ec2
@pytest.mark.docker
def test_life_cycle_tags_switch_ssh_and_termination(cloud: FakeCloud, run: Run) -> None:
    provider = Ec2Provider(settings=settings(cloud, cloud.register()))
    before = dt.datetime.now(dt.UTC)
    with provider.hosts(run, ["a", "b"]) as hosts:
        a, b = hosts["a"], hosts["b"]
        insts = {i["InstanceId"]: i for i in instances(cloud)}
        assert set(insts) == {a.instance_id, b.instance_id}  # type: ignore[attr-defined]
        for host in (a, b):
            inst = insts[host.instance_id]  # type: ignore[attr-defined]
            tags = ec2mod.tags_of(inst)
            assert tags["repro:run"] == run.run_id and tags["Name"] == host.name
            assert tags["repro:owner"] == ec2mod.owner_id() and tags["repro:role"] == host.role
            expires = dt.datetime.strptime(tags["repro:expires"], "%Y-%m-%dT%H:%M:%SZ")
            assert abs((expires.replace(tzinfo=dt.UTC) - before).total_seconds() - 1800) < 120
            how = cloud.ec2.describe_instance_attribute(
                InstanceId=inst["InstanceId"], Attribute="instanceInitiatedShutdownBehavior")
            assert how["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
            data = base64.b64decode(cloud.ec2.describe_instance_attribute(
                InstanceId=inst["InstanceId"], Attribute="userData")["UserData"]["Value"])
            assert run.key.public_line.encode() in data and b"sleep 1800" in data
            assert host.url() == f"ec2://{inst['InstanceId']}"
            assert host.address == inst["PrivateIpAddress"]
        # commands, files and host-to-host ssh over the login the user data installed
        assert a.run("hostname", timeout=10).stdout.strip() == a.instance_id  # type: ignore
        a.put(b"payload\n", "/tmp/repro-x/file", 0o600)
        got = run.scratch / "got"
        a.get("/tmp/repro-x/file", got)
        assert got.read_bytes() == b"payload\n"
        assert a.run(f"ssh {b.address} cat /proc/sys/kernel/random/boot_id",
                     timeout=20).stdout.strip()
        assert a.run("sleep 5", timeout=0.5, check=False).exit_code is None
        # the dead man's switch is armed on the host
        assert "sleep 1800" in a.run("ps -eo args", timeout=10).stdout
    states = {i["InstanceId"]: i["State"]["Name"] for i in instances(cloud)}
    assert set(states.values()) <= {"shutting-down", "terminated"}
    assert (run.reports / "hosts" / f"{run.name('a')}.console.log").is_file()
    wait_until(lambda: not cloud.bodies, 10, "the bodies of terminated instances to go")


@pytest.mark.ec2
@pytest.mark.docker
def test_an_instance_that_never_answers_takes_the_others_down(cloud: FakeCloud,
                                                              run: Run) -> None:
    provider = Ec2Provider(settings=settings(cloud, cloud.register(None), login_timeout_s=2))
    with pytest.raises(ProvisionError, match="no login"), provider.hosts(run, ["a", "b"]):
        pass
    assert {i["State"]["Name"] for i in instances(cloud)} <= {"shutting-down", "terminated"}


@pytest.mark.ec2
def test_the_cap_refuses_a_launch_that_would_exceed_it(cloud: FakeCloud, run: Run) -> None:
    ami = cloud.register(None)
    cloud.ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "repro:run", "Value": "other-run"}]}])
    provider = Ec2Provider(settings=settings(cloud, ami, max_instances=2))
    with pytest.raises(ProvisionError, match="cap"), provider.hosts(run, ["a", "b"]):
        pass
    assert len(instances(cloud)) == 1  # nothing was launched


@pytest.mark.ec2
@pytest.mark.docker
def test_dead_mans_switch_terminates_an_instance_whose_runner_vanished(
        cloud: FakeCloud, run: Run) -> None:
    provider = Ec2Provider(settings=settings(cloud, cloud.register(), ttl_min=0.1))  # 6 s
    with provider.hosts(run, ["a"]) as hosts:
        iid = hosts["a"].instance_id  # type: ignore[attr-defined]
        # the runner does nothing now: the instance powers itself off at expiry, and its
        # shutdown behaviour terminates it
        wait_until(lambda: cloud.state(iid) in ("shutting-down", "terminated"), 40,
                   "the instance to terminate itself")
        assert cloud.halted == [iid]


@pytest.mark.ec2
def test_janitor_terminates_expired_instances_of_any_owner_and_nothing_else(
        cloud: FakeCloud) -> None:
    ami = cloud.register(None)
    now = dt.datetime.now(dt.UTC)

    def launch(tags: dict[str, str]) -> str:
        spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v}
                                                      for k, v in tags.items()]}] if tags else []
        return str(cloud.ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                                           TagSpecifications=spec)["Instances"][0]["InstanceId"])

    stamp = "%Y-%m-%dT%H:%M:%SZ"
    past = launch({"repro:run": "r1", "repro:owner": "elsewhere",
                   "repro:expires": (now - dt.timedelta(minutes=1)).strftime(stamp)})
    future = launch({"repro:run": "r2", "repro:owner": "elsewhere",
                     "repro:expires": (now + dt.timedelta(hours=1)).strftime(stamp)})
    garbled = launch({"repro:run": "r3", "repro:expires": "soon"})
    foreign = launch({"team": "not ours"})
    assert sorted(ec2_janitor.janitor(cloud.ec2)) == sorted([past, garbled])
    states = {i["InstanceId"]: i["State"]["Name"] for i in instances(cloud)}
    assert states[future] == states[foreign] == "running"


@pytest.mark.ec2
def test_cleanup_reaps_this_machines_dead_runs_and_expired_ones_only(
        cloud: FakeCloud, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_EC2_REGION", cloud.region)
    ami = cloud.register(None)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def launch(run_id: str, owner: str) -> str:
        tags = [{"Key": "repro:run", "Value": run_id}, {"Key": "repro:owner", "Value": owner},
                {"Key": "repro:expires", "Value": later}]
        return str(cloud.ec2.run_instances(
            ImageId=ami, MinCount=1, MaxCount=1, TagSpecifications=[
                {"ResourceType": "instance", "Tags": tags}])["Instances"][0]["InstanceId"])

    dead = launch("20260101-000000-dead", ec2mod.owner_id())
    live = launch(run.run_id, ec2mod.owner_id())
    other_machine = launch("20260101-000000-0the", "ci-runner-7")
    removed = ec2_janitor.reap(all_runs=False, live_run_ids={run.run_id})
    assert removed == [f"ec2 instance {dead} (run 20260101-000000-dead)"]
    removed = ec2_janitor.reap(all_runs=True, live_run_ids=set())  # `repro cleanup`
    assert removed == [f"ec2 instance {live} (run {run.run_id})"]
    assert cloud.state(other_machine) == "running"


@pytest.mark.ec2
@pytest.mark.parametrize("var", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_cleanup_reaps_in_the_region_the_backend_used_with_only_an_aws_variable_set(
        cloud: FakeCloud, run: Run, var: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`repro cleanup` with the region in AWS_REGION (or AWS_DEFAULT_REGION) alone, as the
    backend accepts it: the instance a dead run of this machine left is terminated."""
    monkeypatch.setenv(var, cloud.region)  # the fixture removed REPRO_EC2_REGION and the rest
    assert Ec2Settings.from_env().region == cloud.region  # where the backend launches
    ami = cloud.register(None)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tags = [{"Key": "repro:run", "Value": "20260101-000000-dead"},
            {"Key": "repro:owner", "Value": ec2mod.owner_id()},
            {"Key": "repro:expires", "Value": later}]
    dead = cloud.ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": tags}])["Instances"][0]["InstanceId"]
    # the command itself, without the other backends' reapers (they need Docker and touch
    # nothing EC2); plain cleanup spares live runs, this test's among them
    monkeypatch.setattr(cleanup, "REAPERS", ["repro.harness.hosts.ec2.janitor"])
    assert cli.main(["cleanup"]) == cli.EXIT_OK
    assert f"removed ec2 instance {dead} (run 20260101-000000-dead)" in capsys.readouterr().out
    assert cloud.state(dead) in ("shutting-down", "terminated")


@pytest.mark.ec2
@pytest.mark.docker
@pytest.mark.mtu
@pytest.mark.slow
def test_gate_on_amis_blocks_the_one_whose_init_brings_the_wedge_back(
        cloud: FakeCloud, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The whole path on "EC2": two AMIs (their bodies: images with the fixed and the
    pre-fix init baked in), the gate's pytest runs launch instances through the API,
    mtu_wedge runs on them over SSH, the instances are terminated."""
    from repro.harness import cli, images
    root = Path(__file__).resolve().parent.parent
    good = images.bake_docker(run, root / "fixtures/mtu_wedge/fixed.sh", "ami-good")
    bad = images.bake_docker(run, root / "fixtures/mtu_wedge/prefix.sh", "ami-bad")
    try:
        baseline, candidate = cloud.register(good.ref), cloud.register(bad.ref)
        monkeypatch.setenv("REPRO_EC2_REGION", cloud.region)
        monkeypatch.setenv("REPRO_EC2_SUBNET", cloud.subnet_id)
        monkeypatch.setenv("REPRO_EC2_LOGIN_TIMEOUT_S", "60")
        cfg = tmp_path / "fixed.toml"
        cfg.write_text(f'[mtu_wedge]\nhost_init = "{root}/fixtures/mtu_wedge/fixed.sh"\n'
                       "duration_s = 4.0\n")
        code = cli.main(["gate", "--baseline", baseline, "--candidate", candidate,
                         "--incidents", "mtu_wedge", "--config", str(cfg), "--retries", "2",
                         "--reports", str(tmp_path / "reports")])
        out = capsys.readouterr().out
        assert code == cli.EXIT_FAILED, out
        assert "| pass (" in out and "| fail (" in out and "REGRESSION" in out, out
        assert "dropped off the network" in out
        assert {i["State"]["Name"] for i in instances(cloud)} <= {"shutting-down",
                                                                   "terminated"}
        # two hosts per side and attempt (an inconclusive attempt is run again)
        assert len(instances(cloud)) >= 4 and len(instances(cloud)) % 2 == 0
        wait_until(lambda: not cloud.bodies, 10, "the bodies of terminated instances to go")
    finally:
        images.remove(good)
        images.remove(bad)
