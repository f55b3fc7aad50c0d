"""`repro batch` against moto's server: submit, status, collect, and the child.

What runs for real here: moto's Batch, S3 and IAM APIs (ThreadedMotoServer on
127.0.0.1); in the Docker tests moto's Batch really runs each child of the array job
as a container (an image built from repro-base with this checkout's Python mounted,
labelled with the test's run id so `repro cleanup` reaps it), the child really runs
`repro batch child`, really uploads to moto's S3, and collect really merges. The
reproductions inside the containers are a stand-in (tests/batch_standin.py, through
REPRO_BATCH_RUN_COMMAND) that writes a shard folder with the harness's own writers;
`child` is also run here with the real `repro run --shard` (every reproduction fails at
once on an image that does not exist, as in tests/test_shards.py).

What moto does not do and this stands in for: moto sets no AWS_BATCH_JOB_ARRAY_INDEX in
a child's container (and shares one environment list between the children), so
`batch_as_aws` adds it from the child's own index, as Batch does, and puts back the
container's exitCode that moto's DescribeJobs drops. moto ignores
retryStrategy (no attempt is ever retried here: the request is compared instead) and
enforces attemptDurationSeconds only by polling (the child's own deadline, inside it,
is what stops the hung shard here). Real AWS is not called.
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from repro.harness import cli, names
from repro.harness.engines import aws, batch
from repro.harness.engines.aws import S3Url
from repro.harness.engines.batch_child import (
    CHILD_JSON,
    INDEX_VAR,
    RUN_COMMAND_VAR,
    ChildPlan,
    child,
    shard_index,
)
from repro.harness.errors import ConfigError, PrerequisiteError, ReproError
from repro.harness.run import Run, start_run
from tests.ec2cloud import moto_server
from tests.leftovers import leftovers

ROOT = Path(__file__).resolve().parents[1]
STANDIN = f"{sys.executable} {ROOT / 'tests' / 'batch_standin.py'}"
REGIONS = iter(["eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "us-east-2",
                "us-west-1", "us-west-2", "ca-central-1", "ap-south-1", "sa-east-1",
                "eu-north-1", "ap-northeast-1", "ap-southeast-2", "us-east-1"])


# ---- without AWS ------------------------------------------------------------------------

SUB = batch.Submission("nightly.7", 4, "q", S3Url("bucket", "repro/runs"), "eu-west-1",
                       job_definition="repro-shard:3", timeout_s=3600, attempts=3,
                       env=(("REPRO_EC2_AMI", "ami-0123456789abcdef0"),),
                       run_args=("--provider", "ec2", "mtu_wedge"))


def test_the_array_job_request_is_one_child_per_shard_with_timeout_and_retry() -> None:
    req = batch.submit_request(SUB, "arn:def")
    assert req["arrayProperties"] == {"size": 4} and req["jobName"] == "repro-nightly_7"
    assert req["timeout"] == {"attemptDurationSeconds": 3600}
    assert req["retryStrategy"]["attempts"] == 3
    rules = [(r.get("onExitCode", r.get("onReason")), r["action"])
             for r in req["retryStrategy"]["evaluateOnExit"]]
    assert rules == [("1", "EXIT"), ("2", "EXIT"), ("*", "RETRY")]  # findings never retried
    assert req["containerOverrides"]["command"] == [
        "repro", "batch", "child", "--run-id", "nightly.7", "--shards", "4",
        "--s3", "s3://bucket/repro/runs", "--region", "eu-west-1", "--timeout-s", "3480",
        "--", "--provider", "ec2", "mtu_wedge"]
    assert req["containerOverrides"]["environment"] == [
        {"name": "REPRO_EC2_AMI", "value": "ami-0123456789abcdef0"}]
    assert req["tags"] == {"repro:run": "nightly.7", "repro:shards": "4",
                           "repro:s3": "s3://bucket/repro/runs"} and req["propagateTags"]
    one = batch.submit_request(replace(SUB, shards=1), "arn:def")
    assert "arrayProperties" not in one   # Batch's arrays start at 2: one shard is a plain job
    assert batch.child_timeout_s(60) == 45 and batch.child_timeout_s(7200) == 7080


def test_a_child_takes_its_shard_from_the_array_index() -> None:
    assert shard_index({INDEX_VAR: "0"}, 4) == 1 and shard_index({INDEX_VAR: "3"}, 4) == 4
    assert shard_index({}, 1) == 1
    for env in ({}, {INDEX_VAR: "4"}, {INDEX_VAR: "-1"}, {INDEX_VAR: "x"}):
        with pytest.raises(ConfigError, match=INDEX_VAR):
            shard_index(env, 4)


def test_s3_urls() -> None:
    assert S3Url.parse("s3://my-bucket") == S3Url("my-bucket", "")
    assert S3Url.parse("s3://my.bucket/a/b/") == S3Url("my.bucket", "a/b")
    assert S3Url("b", "a/b").key("R", "shard-1-of-2", "x.json") == "a/b/R/shard-1-of-2/x.json"
    for bad in ("http://b/x", "s3://B/x", "s3://ab", "s3://b/../x", "s3://bucket/a//b"):
        with pytest.raises(ValueError):
            S3Url.parse(bad)


def test_aws_refusals_are_one_line() -> None:
    from botocore.exceptions import ClientError, ConnectTimeoutError

    def refused(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "said\nso"},
                            "ResponseMetadata": {"HTTPStatusCode": status}}, "SubmitJob")
    for exc, kind in ((refused("AccessDeniedException", 403), PrerequisiteError),
                      (refused("ClientException", 400), ConfigError),
                      (refused("ServerException", 500), ReproError),
                      (ConnectTimeoutError(endpoint_url="http://x"), ReproError)):
        with pytest.raises(kind) as info, aws.aws_errors("submitting"):
            raise exc
        assert "\n" not in str(info.value) and str(info.value).startswith("submitting")


def batch_cli(*argv: str) -> int:
    """`repro batch ...`'s exit status (argparse exits on bad arguments)."""
    try:
        return cli.main(["batch", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)


SUBMIT = ["submit", "--run-id", "r1", "--shards", "2", "--queue", "q", "--s3", "s3://bkt/p",
          "--job-definition", "d"]


@pytest.mark.parametrize(("argv", "said"), [
    (["submit", "--run-id", "r1"], "required"),
    ([*SUBMIT[:4], "0", *SUBMIT[5:]], "1..10000"),
    ([*SUBMIT[:2], "bad-id", *SUBMIT[3:]], "a run id is"),
    ([*SUBMIT[:8], "http://bkt", *SUBMIT[9:]], "expected s3://"),
    ([*SUBMIT, "--image", "img"], "not allowed with"),
    ([*SUBMIT, "--env", "AWS_BATCH_JOB_ID=1"], "NAME=VALUE"),
    ([*SUBMIT, "--timeout-min", "0.5", "--region", "eu-west-1"], "at least 1"),
    ([*SUBMIT, "--attempts", "11"], "1..10"),
    (["status", "no/such"], "not an AWS Batch job id"),
    (["collect", "j1"], "--out"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], said: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert batch_cli(*argv) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1, err


def test_no_region_and_no_credentials_are_one_line(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    assert batch_cli("status", "j1") == 2
    assert "no AWS region given (fix: pass --region" in capsys.readouterr().err
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert batch_cli("status", "j1", "--region", "eu-west-1") == 2
    err = capsys.readouterr().err
    assert "no AWS credentials found" in err and err.count("\n") == 1, err


# ---- against moto's server --------------------------------------------------------------

@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@dataclass
class Cloud:
    url: str
    region: str
    queue: str
    bucket: str
    batch: Any
    s3: Any


def _docker_mode(url: str, on: bool) -> None:
    """moto's switch between running jobs in Docker and marking them succeeded."""
    requests.post(f"{url}/moto-api/config", json={"batch": {"use_docker": on}},
                  timeout=10).raise_for_status()


@pytest.fixture
def cloud(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """Credentials and endpoint for moto only; a queue, a bucket; a fresh region per test."""
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    region = next(REGIONS)
    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_EC2_METADATA_DISABLED", "true"), ("AWS_ENDPOINT_URL", endpoint),
                       ("AWS_REGION", region)):
        monkeypatch.setenv(var, value)
    monkeypatch.setattr(batch, "POLL_S", 0.5)
    _docker_mode(endpoint, False)
    iam = boto3.client("iam", region_name=region)
    role = iam.create_role(RoleName=f"repro-batch-{region}", AssumeRolePolicyDocument="{}")[
        "Role"]["Arn"]
    b = boto3.client("batch", region_name=region)
    env = b.create_compute_environment(computeEnvironmentName="repro-ce", type="UNMANAGED",
                                       state="ENABLED", serviceRole=role)["computeEnvironmentArn"]
    b.create_job_queue(jobQueueName="repro-q", state="ENABLED", priority=1,
                       computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}])
    s3 = boto3.client("s3", region_name=region)
    s3.create_bucket(Bucket=f"repro-{region}",
                     CreateBucketConfiguration={"LocationConstraint": region}) \
        if region != "us-east-1" else s3.create_bucket(Bucket=f"repro-{region}")
    yield Cloud(endpoint, region, "repro-q", f"repro-{region}", b, s3)
    _docker_mode(endpoint, False)


def test_submit_checks_queue_definition_and_bucket_first(
        cloud: Cloud, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["submit", "--run-id", "r1", "--shards", "3", "--s3", f"s3://{cloud.bucket}/p"]
    assert batch_cli(*base, "--queue", "nope", "--image", "img") == 2
    assert "no AWS Batch job queue 'nope'" in capsys.readouterr().err
    assert batch_cli(*base, "--queue", cloud.queue, "--job-definition", "nope") == 2
    assert "no active job definition 'nope'" in capsys.readouterr().err
    assert batch_cli(*[a.replace(cloud.bucket, "repro-no-bucket") for a in base],
                     "--queue", cloud.queue, "--image", "img") == 2
    assert "listing s3://repro-no-bucket/p/r1/: NoSuchBucket" in capsys.readouterr().err
    cloud.s3.put_object(Bucket=cloud.bucket, Key="p/r1/shard-1-of-3/shard.json", Body=b"{}")
    assert batch_cli(*base, "--queue", cloud.queue, "--image", "img") == 2
    assert "already holds shards of run r1" in capsys.readouterr().err
    assert cloud.batch.list_jobs(jobQueue=cloud.queue, filters=[
        {"name": "JOB_NAME", "values": ["*"]}])["jobSummaryList"] == []  # nothing started


def test_submit_status_on_moto(cloud: Cloud, capsys: pytest.CaptureFixture[str],
                               tmp_path: Path) -> None:
    t0 = time.monotonic()
    assert batch_cli("submit", "--run-id", "r1", "--shards", "3", "--queue", cloud.queue,
                     "--s3", f"s3://{cloud.bucket}/p", "--image", "repro-runner:1",
                     "--timeout-min", "30", "--attempts", "2", "--env", "A=b", "--",
                     "mtu_wedge", "--profile", "full") == 0
    submit_s = time.monotonic() - t0
    job_id = capsys.readouterr().out.splitlines()[0]
    job = cloud.batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert job["tags"] == {"repro:run": "r1", "repro:shards": "3",
                           "repro:s3": f"s3://{cloud.bucket}/p"}
    assert job["container"]["command"][-4:] == ["--", "mtu_wedge", "--profile", "full"]
    assert job["arrayProperties"]["size"] == 3 and job["timeout"] == {
        "attemptDurationSeconds": 1800}
    (definition,) = cloud.batch.describe_job_definitions(jobDefinitionName="repro-shard")[
        "jobDefinitions"]
    props = definition["containerProperties"]
    assert props["image"] == "repro-runner:1" and props["privileged"] is True
    assert {r["type"]: r["value"] for r in props["resourceRequirements"]} == {
        "VCPU": "2", "MEMORY": "4096"}
    t0 = time.monotonic()
    assert batch_cli("status", job_id) == 0
    status_s = time.monotonic() - t0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[:3] for ln in lines[:3]] == [
        ["shard", f"{i}/3", "SUCCEEDED"] for i in (1, 2, 3)]  # moto without Docker: succeeded
    assert "run r1: 3 shard(s): 3 SUCCEEDED" in lines[3]
    # nothing in S3 (moto without Docker runs no child): every shard named missing, exit 1
    assert batch_cli("collect", job_id, "--out", str(tmp_path), "--wait-min", "0.2") == 1
    out = capsys.readouterr()
    assert [ln for ln in out.out.splitlines() if "missing" in ln] == [
        f"shard {i}/3 missing: child SUCCEEDED; nothing uploaded" for i in (1, 2, 3)]
    assert "no shard of run r1 to merge" in out.err
    print(f"moto, no Docker: submit {submit_s:.2f} s, status {status_s:.2f} s")


def test_status_and_collect_of_an_unknown_job_are_one_line(
        cloud: Cloud, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert batch_cli("status", "0f0f0f0f-aaaa") == 2
    assert "no AWS Batch job '0f0f0f0f-aaaa'" in capsys.readouterr().err
    assert batch_cli("collect", "0f0f0f0f-aaaa", "--out", str(tmp_path)) == 2


def test_aws_that_does_not_answer_is_one_line_and_bounded(
        cloud: Cloud, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from repro.harness.procs import free_port
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    t0 = time.monotonic()
    assert batch_cli("status", "j1") == 1
    err = capsys.readouterr().err
    assert "job j1: Could not connect" in err and err.count("\n") == 1, err
    assert time.monotonic() - t0 < 60


def test_a_child_runs_its_shard_and_uploads_it_marker_last(cloud: Cloud, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    put: list[str] = []
    real = aws.put_folder

    def spy(s3: Any, url: S3Url, folder: Path, under: str, files: Any) -> int:
        put.extend(p.name for p in files)
        return real(s3, url, folder, under, files)
    monkeypatch.setattr("repro.harness.engines.batch_child.put_folder", spy)
    # the deadline counts from the child process's start: here that is pytest's
    monkeypatch.setattr("repro.harness.engines.batch_child.process_age_s", lambda: 0.0)
    url = S3Url(cloud.bucket, "runs")
    env = {**os.environ, INDEX_VAR: "1", RUN_COMMAND_VAR: STANDIN, "AWS_BATCH_JOB_ID": "j:1"}
    out = child(ChildPlan("r2", 3, url, 60, ("--profile", "full")), env)
    assert (out.shard, out.exit, out.run_exit, out.ended) == (2, 0, 0, "finished")
    assert put[-2:] == [CHILD_JSON, "shard.json"] and len(put) == out.uploaded >= 6
    keys = aws.list_keys(cloud.s3, url, "r2/shard-2-of-3")
    assert sorted(keys) == sorted(["results.json", "summary.md", "junit.xml", "argv.json",
                                   CHILD_JSON, "shard.json"])
    got = json.loads(cloud.s3.get_object(Bucket=cloud.bucket, Key="runs/r2/shard-2-of-3/"
                                         "argv.json")["Body"].read())
    assert got[-2:] == ["--profile", "full"] and got[:4] == ["--shard", "2/3", "--run-id", "r2"]

    env.update({INDEX_VAR: "2", "STANDIN_NO_REPORT": "3"})     # bad input: no folder
    out = child(ChildPlan("r2", 3, url, 60), env)
    assert (out.exit, out.uploaded) == (2, 1)
    assert aws.list_keys(cloud.s3, url, "r2/shard-3-of-3") == [CHILD_JSON]

    env.update({INDEX_VAR: "0", "STANDIN_SLEEP_S": "60"})       # hangs: the deadline stops it
    t0 = time.monotonic()
    out = child(ChildPlan("r2", 3, url, 2), env)
    assert (out.exit, out.run_exit, out.ended) == (124, None,
                                                   "timed out 2 s after the child started")
    assert time.monotonic() - t0 < 30


def test_a_child_stopped_by_sigterm_stops_its_run_and_still_uploads(cloud: Cloud,
                                                                     tmp_path: Path) -> None:
    """`repro batch child` as Batch runs it (a process of its own), told to stop."""
    import signal

    from repro.harness.procs import wait_for
    env = {**os.environ, RUN_COMMAND_VAR: STANDIN, "STANDIN_SLEEP_S": "120"}  # bounded
    log = tmp_path / "child.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "repro.harness.cli", "batch", "child",
                                 "--run-id", "r4", "--shards", "1", "--s3",
                                 f"s3://{cloud.bucket}/t", "--timeout-s", "300"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: "of run r4:" in log.read_text(), timeout=60,
                 what="the child's line: SIGTERM is handled from then on")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, log.read_text()
    assert time.monotonic() - t0 < 60
    doc = json.loads(cloud.s3.get_object(Bucket=cloud.bucket, Key=f"t/r4/shard-1-of-1/"
                                         f"{CHILD_JSON}")["Body"].read())
    assert (doc["ended"], doc["exit"], doc["run_exit"]) == ("stopped by SIGTERM", 143, None)


@pytest.mark.docker
@pytest.mark.slow
def test_a_child_runs_the_real_repro_run_shard(cloud: Cloud, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The default run command, `python -m repro.harness.cli run --shard 1/1`, on one
    incident whose hosts cannot start (an image that does not exist): a real red shard."""
    monkeypatch.setattr("repro.harness.engines.batch_child.process_age_s", lambda: 0.0)
    url = S3Url(cloud.bucket, "real")
    env = {k: v for k, v in os.environ.items() if k != RUN_COMMAND_VAR}
    t0 = time.monotonic()
    out = child(ChildPlan("r3", 1, url, 600, ("single_branch", "--provider",
                                              "docker:repro-absent-image:none")), env)
    took = time.monotonic() - t0
    assert (out.shard, out.of, out.run_exit, out.exit) == (1, 1, 1, 1), out
    keys = aws.list_keys(cloud.s3, url, "r3/shard-1-of-1")
    assert {"results.json", "summary.md", "junit.xml", "index.html", "shard.json",
            CHILD_JSON} <= set(keys), keys
    shard = json.loads(cloud.s3.get_object(Bucket=cloud.bucket, Key="real/r3/shard-1-of-1/"
                                           "shard.json")["Body"].read())
    assert (shard["run_id"], shard["shard"], shard["of"]) == ("r3", 1, 1)
    assert shard["nodeids"] and all("single_branch" in n for n in shard["nodeids"])
    print(f"real repro run shard 1/1 of single_branch (no host) + upload: {took:.1f} s")


# ---- moto's Batch running the children in Docker -----------------------------------------

@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    r = start_run(tmp_path / "reports")
    yield r
    r.close()


def _mounts() -> list[str]:
    """What a container needs to run this checkout's Python: the checkout, the venv and
    the interpreter it was made from (Debian's own: only its standard library)."""
    base = Path(sys.base_prefix)
    paths = [ROOT, Path(sys.prefix), Path(sysconfig.get_paths()["stdlib"]) if base == Path("/usr")
             else base]
    out: list[str] = []
    for p in sorted({p.resolve() for p in paths}, key=lambda p: len(p.parts)):
        if not any(p.is_relative_to(q) for q in map(Path, out)):
            out.append(str(p))
    return out


@pytest.fixture
def child_image(run: Run) -> Iterator[str]:
    """repro-base plus a `repro` command running this checkout: moto's Batch runs it."""
    from repro.harness.hosts.docker import BASE_IMAGE, client
    dc = client()
    shim = f"#!/bin/sh\nexec {sys.executable} -m repro.harness.cli \"$@\"\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, mode in (("Dockerfile", f"FROM {BASE_IMAGE}\nCOPY repro "
                                  "/usr/local/bin/repro\n".encode(), 0o644),
                                 ("repro", shim, 0o755)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    tag = run.name("batchchild") + ":test"
    dc.images.build(fileobj=io.BytesIO(buf.getvalue()), custom_context=True, tag=tag,
                    labels=names.run_labels(run.run_id), rm=True, forcerm=True, pull=False,
                    timeout=300)
    yield tag
    dc.images.remove(tag, force=True)


@pytest.fixture
def batch_as_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two things Batch does and moto does not: AWS_BATCH_JOB_ARRAY_INDEX in each child's
    container (moto sets none, and appends to one environment list the children share:
    copied here), and the container's exitCode in DescribeJobs (moto drops it)."""
    from moto.batch.models import Job
    original, details = Job._get_container_property, Job._container_details

    def environment(self: Any, p: str, default: Any) -> Any:
        if p != "environment":
            return original(self, p, default)
        shared = self.container_overrides
        self.container_overrides = copy.deepcopy(shared)
        try:
            env = original(self, p, default)
        finally:
            self.container_overrides = shared
        index = self.array_properties.get("index")
        return env + ([{"name": INDEX_VAR, "value": str(index)}] if index is not None else [])

    def with_exit_code(self: Any) -> Any:
        out = details(self)
        return {**out, "exitCode": self.exit_code} if self.exit_code is not None else out
    monkeypatch.setattr(Job, "_get_container_property", environment)
    monkeypatch.setattr(Job, "_container_details", with_exit_code)


def _definition(cloud: Cloud, image: str) -> str:
    """A job definition whose containers see the checkout (moto's volumes)."""
    mounts = _mounts()
    return str(cloud.batch.register_job_definition(
        jobDefinitionName="repro-shard-test", type="container", containerProperties={
            "image": image, "command": ["repro", "batch", "child", "--help"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                     {"type": "MEMORY", "value": "512"}],
            "volumes": [{"name": f"v{i}", "host": {"sourcePath": p}}
                        for i, p in enumerate(mounts)],
            "mountPoints": [{"sourceVolume": f"v{i}", "containerPath": p, "readOnly": True}
                            for i, p in enumerate(mounts)]})["jobDefinitionArn"])


@pytest.mark.docker
@pytest.mark.slow
def test_moto_batch_runs_the_children_and_collect_merges_what_came_back(
        cloud: Cloud, run: Run, child_image: str, batch_as_aws: None,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    monkeypatch.setenv("MOTO_DOCKER_NETWORK_MODE", "host")  # the child reaches 127.0.0.1
    _docker_mode(cloud.url, True)
    definition = _definition(cloud, child_image)
    env = (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
           ("AWS_ENDPOINT_URL", cloud.url), ("AWS_EC2_METADATA_DISABLED", "true"),
           (RUN_COMMAND_VAR, STANDIN))
    url = S3Url(cloud.bucket, "nightly")
    figures: dict[str, float] = {}

    def submit(run_id: str, shards: int, timeout_s: int,
               extra: tuple[tuple[str, str], ...] = ()) -> str:
        sub = batch.Submission(run_id, shards, cloud.queue, url, cloud.region,
                               job_definition=definition, timeout_s=timeout_s, env=env + extra)
        t0 = time.monotonic()
        job_id = batch.submit(cloud.batch, cloud.s3, sub)
        figures[f"{run_id} submit s"] = time.monotonic() - t0
        return job_id

    def status_and_collect(run_id: str, job_id: str) -> tuple[int, str]:
        view = batch.wait_finished(cloud.batch, job_id, 240)
        figures[f"{run_id} children done s"] = time.monotonic() - started
        assert view.finished, view
        capsys.readouterr()
        t0 = time.monotonic()
        assert batch_cli("status", job_id) in (0, 1)
        figures[f"{run_id} status s"] = time.monotonic() - t0
        t0 = time.monotonic()
        code = batch_cli("collect", job_id, "--out", str(tmp_path / "reports"))
        figures[f"{run_id} collect+merge s"] = time.monotonic() - t0
        said = capsys.readouterr().out
        print(said)
        return code, said

    # both at once: a run whose every shard is as expected, and one whose shard 2 hangs
    # past the child's deadline (45 s after its start, inside the attempt's 60 s) and
    # shard 3 regresses
    started = time.monotonic()
    bad = f"{run.short}.b"
    good_job = submit(run.short, 2, 120)
    bad_job = submit(bad, 3, 60, (("STANDIN_FAIL", "3"), ("STANDIN_HANG", "2")))

    # every shard as expected: green
    code, said = status_and_collect(run.short, good_job)
    assert code == 0, said
    assert [ln.split()[:5] for ln in said.splitlines()[:2]] == [
        ["shard", f"{i}/2", "SUCCEEDED", "exit", "0"] for i in (1, 2)], said
    merged = tmp_path / "reports" / run.short
    assert "All 2 results as expected" in (merged / "summary.md").read_text()
    assert sorted(p.name for p in (merged / "shards").iterdir()) == [
        f"{run.short}.shard-1-of-2", f"{run.short}.shard-2-of-2"]
    argv = json.loads((merged / "shards" / f"{run.short}.shard-2-of-2" / "argv.json").read_text())
    assert argv[:4] == ["--shard", "2/2", "--run-id", run.short]   # from the array index

    # shard 2 hung, shard 3 regressed: red, shard 2 named
    code, said = status_and_collect(bad, bad_job)
    assert code == 1, said
    lines = said.splitlines()
    assert lines[0].split()[:5] == ["shard", "1/3", "SUCCEEDED", "exit", "0"], said
    assert lines[1].split()[:5] == ["shard", "2/3", "FAILED", "exit", "124"], said
    assert lines[2].split()[:5] == ["shard", "3/3", "FAILED", "exit", "1"], said
    assert "failed: 2, 3" in lines[3]
    assert any(ln.startswith("shard 2/3 missing: child FAILED, exit 124; the run timed out "
                             "45 s after the child started") for ln in lines), said
    head = (tmp_path / "reports" / bad / "summary.md").read_text()
    assert "shard(s) 2 of 3 missing" in head and "1 of 2 results NOT as expected" in head
    assert leftovers(run.short) == [f"scratch /tmp/{run.name()}"]  # moto removed the children
    print("moto Batch in Docker: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()))


def test_the_deadline_counts_from_the_child_process_start() -> None:
    from repro.harness.engines.batch_child import process_age_s
    done = subprocess.run([sys.executable, "-c", "import time; time.sleep(1.2); from repro."
                           "harness.engines.batch_child import process_age_s as a; print(a())"],
                          capture_output=True, text=True, timeout=60, check=True)
    assert 1.2 <= float(done.stdout) < 30 and process_age_s() > 0
