"""`repro batch ...`: the command line of the AWS Batch engine (repro.harness.engines.batch).

  repro batch submit --run-id RUNID --shards N --queue QUEUE --s3 s3://BUCKET/PREFIX
                     (--job-definition DEF | --image IMAGE [--job-role-arn ARN] [--vcpus V]
                     [--memory-mib M]) [--timeout-min M] [--attempts K] [--env NAME=VALUE]...
                     [--region R] [-- RUN ARGUMENTS]
                     prints the job id alone on its first line, then what it submitted
  repro batch status JOBID       a line per child (its shard, status, exit, attempts,
                                 time, reason) and a summary; exit 1 if a child failed
  repro batch collect JOBID --out DIR [--s3 URL] [--wait-min M]
                                 downloads the whole shard folders, names the missing
                                 ones, merges into DIR/RUNID/; exit 1 on a regression or
                                 a missing shard (the merge's status)
  repro batch child ...          what runs inside each child (batch_child); not by hand

RUN ARGUMENTS go to each child's `repro run` (incidents, --provider, --profile, --config).
Exit codes as everywhere: 0, 1 as above, 2 bad input or a missing prerequisite (no
region, no credentials, no such queue, job or bucket, access denied: one line).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

from repro.harness.engines import aws, batch
from repro.harness.engines.aws import S3Url
from repro.harness.errors import ConfigError
from repro.harness.shards import check_run_id

EXIT_OK, EXIT_FAILED = 0, 1


def _checked(parse: Any, what: str) -> Any:
    def check(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc) or f"bad {what}: {text!r}") from exc
    check.__name__ = what
    return check


def _int_in(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        if not re.fullmatch(r"\d+", text) or not low <= int(text) <= high:
            raise ValueError(f"expected a whole number {low}..{high}, got {text!r}")
        return int(text)
    return _checked(parse, "number")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise ValueError(f"expected a positive number, got {text!r}")
    return value


def _env(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or \
            name.startswith("AWS_BATCH"):
        raise ValueError(f"expected NAME=VALUE (NAME not AWS_BATCH_*), got {text!r}")
    return name, value


def _job_id(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9:_-]{0,127}", text):
        raise ValueError(f"not an AWS Batch job id: {text!r}")
    return text


def add_parser(sub: Any) -> None:
    """`repro batch` and its subcommands under the CLI's subparsers."""
    top = sub.add_parser("batch", help="the shards of one run as an AWS Batch array job")
    cmds = top.add_subparsers(dest="batch_command", metavar="submit|status|collect")
    top.set_defaults(batch_usage=top.format_usage)
    run_id, s3 = _checked(check_run_id, "run id"), _checked(S3Url.parse, "S3 URL")
    s = cmds.add_parser("submit", help="submit an array job of one child per shard")
    s.add_argument("--run-id", type=run_id, required=True, metavar="RUNID")
    s.add_argument("--shards", type=_int_in(1, batch.MAX_SHARDS), required=True, metavar="N")
    s.add_argument("--queue", required=True, help="the job queue's name or ARN")
    s.add_argument("--s3", type=s3, required=True, metavar="s3://BUCKET/PREFIX")
    how = s.add_mutually_exclusive_group(required=True)
    how.add_argument("--job-definition", metavar="DEF", help="name, name:revision or ARN")
    how.add_argument("--image", help=f"register {batch.JOB_DEFINITION_NAME} from this image")
    s.add_argument("--job-role-arn", default="", metavar="ARN",
                   help="with --image: the role the children's AWS calls use")
    s.add_argument("--vcpus", type=_checked(_positive, "vCPUs"), default=2.0)
    s.add_argument("--memory-mib", type=_int_in(128, 10_000_000), default=4096)
    s.add_argument("--timeout-min", type=_checked(_positive, "minutes"), default=60.0,
                   help="per child attempt (default 60; at least 1)")
    s.add_argument("--attempts", type=_int_in(1, batch.MAX_ATTEMPTS), default=2,
                   help="per child, retries included (default 2)")
    s.add_argument("--env", type=_checked(_env, "NAME=VALUE"), action="append", default=[],
                   metavar="NAME=VALUE", help="in every child (repeatable)")
    s.add_argument("run_args", nargs="*", metavar="RUN_ARG",
                   help="after --: each child's `repro run` arguments")
    st = cmds.add_parser("status", help="each child's status and a summary")
    st.add_argument("job_id", type=_checked(_job_id, "job id"), metavar="JOBID")
    c = cmds.add_parser("collect", help="download the shard folders and merge them")
    c.add_argument("job_id", type=_checked(_job_id, "job id"), metavar="JOBID")
    c.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="reports root: DIR/RUNID.shard-I-of-N/ and the merged DIR/RUNID/")
    c.add_argument("--s3", type=s3, metavar="s3://BUCKET/PREFIX",
                   help="default: the job's repro:s3 tag")
    c.add_argument("--wait-min", type=_checked(_positive, "minutes"), default=None,
                   help="first wait up to this long for every child to finish")
    ch = cmds.add_parser("child", help="(inside a child) run its shard, upload its folder")
    ch.add_argument("--run-id", type=run_id, required=True)
    ch.add_argument("--shards", type=_int_in(1, batch.MAX_SHARDS), required=True)
    ch.add_argument("--s3", type=s3, required=True)
    ch.add_argument("--timeout-s", type=_checked(_positive, "seconds"), default=None)
    ch.add_argument("run_args", nargs="*", metavar="RUN_ARG")
    for p in (s, st, c, ch):
        p.add_argument("--region", help="default: AWS_REGION, then AWS_DEFAULT_REGION")


def main(args: argparse.Namespace) -> int:
    if args.batch_command is None:  # `repro batch` alone: its own usage, not argparse's dest
        print(args.batch_usage().rstrip(), file=sys.stderr)
        print("repro batch: name a subcommand: submit, status or collect", file=sys.stderr)
        return 2
    return {"submit": cmd_submit, "status": cmd_status, "collect": cmd_collect,
            "child": cmd_child}[args.batch_command](args)


def cmd_submit(args: argparse.Namespace) -> int:
    region = aws.region(args.region)
    if args.timeout_min * 60 < batch.MIN_TIMEOUT_S:
        raise ConfigError(f"--timeout-min {args.timeout_min:g}: AWS Batch takes at least 1")
    sub = batch.Submission(
        args.run_id, args.shards, args.queue, args.s3, region,
        job_definition=args.job_definition or "", image=args.image or "",
        job_role_arn=args.job_role_arn, vcpus=args.vcpus, memory_mib=args.memory_mib,
        timeout_s=round(args.timeout_min * 60), attempts=args.attempts, env=tuple(args.env),
        run_args=tuple(args.run_args))
    job_id = batch.submit(aws.client("batch", region), aws.client("s3", region), sub)
    print(job_id)
    print(f"repro batch: submitted {batch.job_name(sub.run_id)} ({job_id}) to {sub.queue}: "
          f"{sub.shards} shard(s) of run {sub.run_id}, {args.timeout_min:g} min and "
          f"{sub.attempts} attempt(s) per child, reports to {sub.s3}/{sub.run_id}/\n"
          f"  repro batch status {job_id}\n  repro batch collect {job_id} --out reports")
    return EXIT_OK


def _line(c: batch.Child, of: int) -> str:
    exit_code = "-" if c.exit_code is None else str(c.exit_code)
    took = "-" if c.seconds is None else f"{c.seconds:.0f} s"
    return (f"shard {c.shard:>{len(str(of))}}/{of}  {c.status:<9}  exit {exit_code:<3}  "
            f"attempts {c.attempts}  {took:>7}  {c.reason}").rstrip()


def cmd_status(args: argparse.Namespace) -> int:
    view = batch.describe(aws.client("batch", aws.region(args.region)), args.job_id)
    for c in view.children:
        print(_line(c, view.shards))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(view.counts().items()))
    failed = [c for c in view.children if c.status == "FAILED"]
    print(f"repro batch: {view.name} ({view.job_id}), run {view.run_id}: {view.shards} "
          f"shard(s): {counts}" + ("" if view.finished else " (not finished)")
          + (f"; failed: {', '.join(str(c.shard) for c in failed)}" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


def cmd_collect(args: argparse.Namespace) -> int:
    from repro.harness.report.merge import merge
    region = aws.region(args.region)
    b = aws.client("batch", region)
    view = (batch.wait_finished(b, args.job_id, args.wait_min * 60) if args.wait_min
            else batch.describe(b, args.job_id))
    url = args.s3 or view.s3
    if url is None:
        raise ConfigError(f"job {args.job_id} names no S3 folder: pass --s3")
    started = time.monotonic()
    got = batch.collect(aws.client("s3", region, transfer=True), view, url, args.out)
    if not view.finished:
        print(f"repro batch: job {args.job_id} not finished ({view.counts()}); collecting "
              f"what is there")
    for index, why in sorted(got.missing.items()):
        print(f"shard {index}/{view.shards} missing: {why}")
    for label in got.ignored:
        print(f"ignored {url}/{view.run_id}/{label}/: not a shard of {view.shards}")
    print(f"repro batch: {len(got.folders)} of {view.shards} shard folder(s) from "
          f"{url}/{view.run_id}/ in {time.monotonic() - started:.1f} s")
    if not got.folders:
        print(f"repro batch: no shard of run {view.run_id} to merge", file=sys.stderr)
        return EXIT_FAILED
    merged, out = merge(got.folders, args.out / view.run_id, args.out)
    status = merged.status()
    print(f"{status.headline}\nreport: {out / 'summary.md'}\npage:   {out / 'index.html'}")
    return EXIT_OK if status.state == "good" else EXIT_FAILED


def cmd_child(args: argparse.Namespace) -> int:
    from repro.harness.engines.batch_child import ChildPlan, child
    plan = ChildPlan(args.run_id, args.shards, args.s3, args.timeout_s, tuple(args.run_args))
    return child(plan, region_name=args.region).exit
