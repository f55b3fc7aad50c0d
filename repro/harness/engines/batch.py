"""The shards of one run as an AWS Batch array job: submit, look at, collect.

Model: `submit` puts one array job of N children on a job queue (N = 1: a plain job),
with a job definition given (name, name:revision or ARN) or one it registers from an
image (`repro-shard`, a new revision each time). Every child gets the same container
command, `repro batch child --run-id RUNID --shards N --s3 URL --region R --timeout-s T
[-- run arguments]` (repro.harness.engines.batch_child: the child reads its shard from
AWS_BATCH_JOB_ARRAY_INDEX), the same per-attempt timeout (attemptDurationSeconds; the
child's own deadline T is CHILD_MARGIN_S inside it, so it still uploads) and retry
strategy (`retry_strategy`: a child that exits 1, a reproduction failed, or 2, bad input,
is not retried; a lost host, a timed-out or killed attempt, a failed upload is, up to
`attempts` in all). The job carries the tags repro:run, repro:shards and repro:s3, so
`status` and `collect` need only its id.

`describe` reads the job and each child (`JOBID:k` for shard k+1). `collect` lists
`s3://BUCKET/PREFIX/RUNID/`, downloads each shard folder whose shard.json is there
(a folder without one was not uploaded whole) into `OUT/RUNID.shard-I-of-N/`, names every
other shard with what its child said, and merges them (repro.harness.report.merge)
into `OUT/RUNID/`, whose banner is red when a shard is missing.

Before submitting it checks, with one line each: the queue exists and is enabled, the
bucket answers and holds nothing yet under PREFIX/RUNID/ (shards of an earlier run of
that id would be merged with this one's), the job definition exists. Bad input stops
before any job starts.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.harness.engines.aws import S3Url, aws_errors, get_folder, list_keys
from repro.harness.engines.batch_child import CHILD_JSON, MARKER
from repro.harness.errors import ConfigError
from repro.harness.shards import Shard

JOB_DEFINITION_NAME = "repro-shard"
TAG_RUN, TAG_SHARDS, TAG_S3 = "repro:run", "repro:shards", "repro:s3"
MAX_SHARDS, MAX_ATTEMPTS, MIN_TIMEOUT_S = 10_000, 10, 60   # AWS Batch's own limits
CHILD_MARGIN_S = 120.0
FINAL = ("SUCCEEDED", "FAILED")
POLL_S = 10.0


@dataclass(frozen=True)
class Submission:
    run_id: str
    shards: int
    queue: str
    s3: S3Url
    region: str
    job_definition: str = ""   # an existing one, or:
    image: str = ""            # register `repro-shard` from this image
    job_role_arn: str = ""
    vcpus: float = 2.0
    memory_mib: int = 4096
    privileged: bool = True    # netns, nftables, a Docker daemon in the child
    timeout_s: int = 3600
    attempts: int = 2
    env: tuple[tuple[str, str], ...] = ()
    run_args: tuple[str, ...] = ()
    program: tuple[str, ...] = ("repro",)


def job_name(run_id: str) -> str:
    return "repro-" + run_id.replace(".", "_")   # Batch: letters, digits, '-' and '_'


def child_timeout_s(timeout_s: float) -> float:
    return timeout_s - min(CHILD_MARGIN_S, timeout_s / 4)


def retry_strategy(attempts: int) -> dict[str, Any]:
    return {"attempts": attempts, "evaluateOnExit": [
        {"onExitCode": "1", "action": "EXIT"},   # a reproduction failed: a finding
        {"onExitCode": "2", "action": "EXIT"},   # bad input: the same next time
        {"onReason": "*", "action": "RETRY"}]}   # host lost, timeout, killed, upload failed


def child_command(sub: Submission) -> list[str]:
    cmd = [*sub.program, "batch", "child", "--run-id", sub.run_id, "--shards", str(sub.shards),
           "--s3", str(sub.s3), "--region", sub.region,
           "--timeout-s", f"{child_timeout_s(sub.timeout_s):.0f}"]
    return cmd + (["--", *sub.run_args] if sub.run_args else [])


def submit_request(sub: Submission, job_definition: str) -> dict[str, Any]:
    """SubmitJob's parameters (a pure function: what the tests compare)."""
    req: dict[str, Any] = {
        "jobName": job_name(sub.run_id), "jobQueue": sub.queue, "jobDefinition": job_definition,
        "containerOverrides": {"command": child_command(sub), "environment": [
            {"name": k, "value": v} for k, v in sub.env]},
        "timeout": {"attemptDurationSeconds": sub.timeout_s},
        "retryStrategy": retry_strategy(sub.attempts),
        "tags": {TAG_RUN: sub.run_id, TAG_SHARDS: str(sub.shards), TAG_S3: str(sub.s3)},
        "propagateTags": True}
    if sub.shards > 1:
        req["arrayProperties"] = {"size": sub.shards}
    return req


def definition_request(sub: Submission) -> dict[str, Any]:
    props: dict[str, Any] = {
        "image": sub.image, "command": [*sub.program, "batch", "child", "--help"],
        "resourceRequirements": [{"type": "VCPU", "value": f"{sub.vcpus:g}"},
                                 {"type": "MEMORY", "value": str(sub.memory_mib)}],
        "privileged": sub.privileged}
    if sub.job_role_arn:
        props["jobRoleArn"] = sub.job_role_arn
    return {"jobDefinitionName": JOB_DEFINITION_NAME, "type": "container",
            "containerProperties": props, "propagateTags": True,
            "tags": {TAG_RUN: sub.run_id}}


def submit(batch: Any, s3: Any, sub: Submission) -> str:
    """Check the queue, the definition and the bucket, then submit; the job id."""
    with aws_errors(f"job queue {sub.queue}"):
        queues = batch.describe_job_queues(jobQueues=[sub.queue])["jobQueues"]
    if not queues:
        raise ConfigError(f"no AWS Batch job queue {sub.queue!r} in {sub.region}")
    if queues[0].get("state") != "ENABLED":
        raise ConfigError(f"job queue {sub.queue} is {queues[0].get('state')}, not ENABLED")
    if list_keys(s3, sub.s3, sub.run_id, limit=1):  # the bucket answers, the run id is new
        raise ConfigError(f"{sub.s3}/{sub.run_id}/ already holds shards of run {sub.run_id}: "
                          f"give a new --run-id (or remove them)")
    if sub.image:
        with aws_errors(f"registering job definition {JOB_DEFINITION_NAME} from {sub.image}"):
            definition = batch.register_job_definition(**definition_request(sub))[
                "jobDefinitionArn"]
    else:
        with aws_errors(f"job definition {sub.job_definition}"):
            found = batch.describe_job_definitions(jobDefinitions=[sub.job_definition],
                                                   status="ACTIVE")["jobDefinitions"]
        if not found:
            raise ConfigError(f"no active job definition {sub.job_definition!r} in "
                              f"{sub.region}")
        definition = sub.job_definition
    with aws_errors(f"submitting {job_name(sub.run_id)} to {sub.queue}"):
        return str(batch.submit_job(**submit_request(sub, definition))["jobId"])


@dataclass(frozen=True)
class Child:
    shard: int
    job_id: str
    status: str
    exit_code: int | None
    attempts: int
    reason: str
    seconds: float | None


@dataclass
class JobView:
    job_id: str
    name: str
    status: str
    run_id: str
    shards: int
    s3: S3Url | None
    children: list[Child] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return all(c.status in FINAL for c in self.children)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.children:
            out[c.status] = out.get(c.status, 0) + 1
        return out


def describe(batch: Any, job_id: str) -> JobView:
    with aws_errors(f"job {job_id}"):
        jobs = batch.describe_jobs(jobs=[job_id])["jobs"]
    if not jobs:
        raise ConfigError(f"no AWS Batch job {job_id!r} (jobs are kept about 7 days)")
    job = jobs[0]
    run_id, shards, s3 = _identity(job)
    size = int(job.get("arrayProperties", {}).get("size", 0))
    if not size:
        return JobView(job_id, job["jobName"], job["status"], run_id, shards, s3,
                       [_child(1, job)])
    ids = [f"{job_id}:{k}" for k in range(size)]
    found: dict[str, Any] = {}
    for start in range(0, size, 100):                      # DescribeJobs takes 100 at a time
        with aws_errors(f"children of job {job_id}"):
            found.update((j["jobId"], j) for j in batch.describe_jobs(
                jobs=ids[start:start + 100])["jobs"])
    children = [_child(k + 1, found[i]) if i in found else
                Child(k + 1, i, "UNKNOWN", None, 0, "not in DescribeJobs", None)
                for k, i in enumerate(ids)]
    return JobView(job_id, job["jobName"], job["status"], run_id, size, s3, children)


def _identity(job: dict[str, Any]) -> tuple[str, int, S3Url | None]:
    """(run id, shards, S3 folder) from the job's tags, else from its child command."""
    tags = job.get("tags") or {}
    cmd = list(job.get("container", {}).get("command") or [])

    def arg(flag: str) -> str:
        return cmd[cmd.index(flag) + 1] if flag in cmd[:-1] else ""
    run_id, shards, url = (tags.get(TAG_RUN) or arg("--run-id"),
                           tags.get(TAG_SHARDS) or arg("--shards"), tags.get(TAG_S3) or arg("--s3"))
    if not run_id or not str(shards).isdigit():
        raise ConfigError(f"job {job.get('jobId')} was not submitted by `repro batch submit` "
                          f"(no {TAG_RUN}/{TAG_SHARDS} tags)")
    try:
        return run_id, int(shards), S3Url.parse(url) if url else None
    except ValueError as exc:
        raise ConfigError(f"job {job.get('jobId')}: tag {TAG_S3}: {exc}") from exc


def _child(shard: int, job: dict[str, Any]) -> Child:
    container = job.get("container") or {}
    started, stopped = job.get("startedAt"), job.get("stoppedAt")
    reason = job.get("statusReason") or container.get("reason") or ""
    return Child(shard, job["jobId"], job["status"], container.get("exitCode"),
                 len(job.get("attempts") or []), " ".join(str(reason).split()),
                 (stopped - started) / 1000 if started and stopped else None)


def wait_finished(batch: Any, job_id: str, timeout_s: float) -> JobView:
    """The job once every child is SUCCEEDED or FAILED, or as it is at the deadline."""
    deadline = time.monotonic() + timeout_s
    view = describe(batch, job_id)
    while not view.finished and time.monotonic() < deadline:
        time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))  # a bounded poll
        view = describe(batch, job_id)
    return view


@dataclass
class Collected:
    folders: list[Path]
    missing: dict[int, str]          # shard -> why (what its child said)
    ignored: list[str]               # S3 folders of another N under the same run id


def collect(s3: Any, view: JobView, url: S3Url, out: Path) -> Collected:
    """Download every whole shard folder of the job's run into OUT/RUNID.shard-I-of-N/."""
    keys = list_keys(s3, url, view.run_id)
    by_label: dict[str, list[str]] = {}
    for key in keys:
        label, _, rel = key.partition("/")
        by_label.setdefault(label, []).append(rel)
    want = {Shard(i, view.shards).label: i for i in range(1, view.shards + 1)}
    got = Collected([], {}, sorted(lab for lab in by_label
                                   if lab not in want and re.fullmatch(r"shard-\d+-of-\d+", lab)))
    children = {c.shard: c for c in view.children}
    for label, index in want.items():
        rels = by_label.get(label, [])
        folder = out / Shard(index, view.shards).folder(view.run_id)
        if MARKER in rels:
            get_folder(s3, url, f"{view.run_id}/{label}", rels, folder)
            _check_shard(folder, view, index)
            got.folders.append(folder)
            continue
        said = _child_said(s3, url, f"{view.run_id}/{label}", rels, folder)
        child = children.get(index)
        status = (f"child {child.status}" + (f", exit {child.exit_code}"
                                             if child.exit_code is not None else "")
                  + (f": {child.reason}" if child.reason else "")) if child else "no child"
        got.missing[index] = "; ".join(p for p in (status, said) if p)
    return got


def _child_said(s3: Any, url: S3Url, under: str, rels: Sequence[str], folder: Path) -> str:
    if CHILD_JSON not in rels:
        return "nothing uploaded" if not rels else f"{len(rels)} file(s) but no {MARKER}"
    get_folder(s3, url, under, [CHILD_JSON], folder)
    try:
        doc = json.loads((folder / CHILD_JSON).read_text())
        return f"the run {doc['ended']} (exit {doc['run_exit']}), no {MARKER}"
    except (ValueError, KeyError, TypeError):
        return f"an unreadable {CHILD_JSON}"


def _check_shard(folder: Path, view: JobView, index: int) -> None:
    try:
        doc = json.loads((folder / MARKER).read_text())
        same = (doc["run_id"], int(doc["shard"]), int(doc["of"])) == (view.run_id, index,
                                                                       view.shards)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{folder / MARKER}: not a shard's shard.json ({exc})") from exc
    if not same:
        raise ConfigError(f"{folder / MARKER} says run {doc['run_id']} shard "
                          f"{doc['shard']}/{doc['of']}, not {view.run_id} {index}/{view.shards}")
