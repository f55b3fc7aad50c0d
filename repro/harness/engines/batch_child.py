"""What one AWS Batch child runs: its shard of the run, then its folder to S3.

Model: AWS Batch starts N children of one array job, each with AWS_BATCH_JOB_ARRAY_INDEX
= 0..N-1 (a job of one shard is not an array: no index, shard 1/1). Child k runs

  repro run --shard k+1/N --run-id RUNID --reports <temp dir> [the job's run arguments]

as its own process group, bounded by `timeout_s` counted from the child's own start (its
process's start time, so a slow container start or import counts too; set by `repro
batch submit` a margin inside the attempt's timeout, so the child, not Batch, stops a
hung run and still uploads), and on SIGTERM (Batch stopping the attempt) passes the
signal on and waits GRACE_S for the run to write its report. Then it uploads its folder
`RUNID.shard-k+1-of-N/` to `s3://BUCKET/PREFIX/RUNID/shard-k+1-of-N/`: every file, then
`batch-child.json` (what ran, its exit status, how it ended), then `shard.json` last,
so a folder whose shard.json is in S3 was uploaded whole (`repro batch collect` takes
only those). A run that wrote no folder (bad input, a crash) still leaves batch-child.json,
which collect quotes for the missing shard.

Exit status: the run's (0 as expected, 1 a reproduction failed, 2 bad input), 124 when
the child's deadline stopped it, 143 after SIGTERM, 3 when the upload failed. The job's
retry strategy (repro.harness.engines.batch) retries neither 1 nor 2.

REPRO_BATCH_RUN_COMMAND (a command line) replaces `repro run` (default: this Python's
`-m repro.harness.cli run`): a team's wrapper that sets a machine up first, or the
tests' stand-in; the shard options are appended to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from repro.harness.engines.aws import S3Url, client, put_folder, region
from repro.harness.errors import ConfigError, ReproError
from repro.harness.procs import start_ticks
from repro.harness.shards import Shard

INDEX_VAR = "AWS_BATCH_JOB_ARRAY_INDEX"
RUN_COMMAND_VAR = "REPRO_BATCH_RUN_COMMAND"
MARKER, CHILD_JSON = "shard.json", "batch-child.json"
EXIT_UPLOAD, EXIT_TIMEOUT, EXIT_TERM = 3, 124, 143
GRACE_S, KILL_WAIT_S = 15.0, 10.0  # ECS kills a stopped container 30 s after SIGTERM


@dataclass(frozen=True)
class ChildPlan:
    run_id: str
    shards: int
    s3: S3Url
    timeout_s: float | None = None
    run_args: tuple[str, ...] = ()


@dataclass
class ChildOutcome:
    run_id: str
    shard: int
    of: int
    exit: int               # the child's exit status (module docstring)
    run_exit: int | None    # repro run's, None when it was stopped
    ended: str              # "finished", "timed out N s after the child started",
                            # "stopped by SIGTERM"
    seconds: float
    uploaded: int
    where: str              # the shard's S3 folder
    job_id: str = ""
    attempt: str = ""
    command: tuple[str, ...] = ()


class _Stopped(Exception):
    """SIGTERM arrived while the run was going."""


def shard_index(env: Mapping[str, str], shards: int) -> int:
    """This child's shard (1-based) from AWS_BATCH_JOB_ARRAY_INDEX (0-based)."""
    raw = env.get(INDEX_VAR, "").strip()
    if not raw:
        if shards == 1:
            return 1
        raise ConfigError(f"{INDEX_VAR} is not set: AWS Batch sets it in each child of an "
                          f"array job (this is one of {shards} shards)")
    if not raw.isdigit() or int(raw) >= shards:
        raise ConfigError(f"{INDEX_VAR}={raw!r} is not an index 0..{shards - 1}")
    return int(raw) + 1


def run_command(env: Mapping[str, str]) -> list[str]:
    given = env.get(RUN_COMMAND_VAR, "").strip()
    return shlex.split(given) if given else [sys.executable, "-m", "repro.harness.cli", "run"]


def process_age_s() -> float:
    """Seconds since this process started (0 where /proc cannot say)."""
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    ticks = start_ticks(os.getpid())
    return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK")) if ticks is not None else 0.0


def child(plan: ChildPlan, env: Mapping[str, str] = os.environ,
          region_name: str | None = None) -> ChildOutcome:
    shard = Shard(shard_index(env, plan.shards), plan.shards)
    s3 = client("s3", region(region_name, env), transfer=True)  # no credentials: before the run
    where = f"s3://{plan.s3.bucket}/{plan.s3.key(plan.run_id, shard.label)}/"
    with tempfile.TemporaryDirectory(prefix="repro-batch-") as tmp:
        cmd = [*run_command(env), "--shard", f"{shard.index}/{shard.of}", "--run-id",
               plan.run_id, "--reports", tmp, *plan.run_args]
        started = time.monotonic()
        budget = None if plan.timeout_s is None else max(1.0, plan.timeout_s - process_age_s())
        run_exit, ended = _run(cmd, budget, env, f"repro batch child: shard {shard.index}/"
                               f"{shard.of} of run {plan.run_id}: {shlex.join(cmd)}")
        if run_exit is None and not ended.startswith("stopped"):
            ended = f"timed out {plan.timeout_s:.0f} s after the child started"
        code = run_exit if run_exit is not None else (
            EXIT_TERM if ended.startswith("stopped") else EXIT_TIMEOUT)
        out = ChildOutcome(plan.run_id, shard.index, shard.of, code, run_exit, ended,
                           round(time.monotonic() - started, 1), 0, where,
                           env.get("AWS_BATCH_JOB_ID", ""), env.get("AWS_BATCH_JOB_ATTEMPT", ""),
                           tuple(cmd))
        folder = Path(tmp) / shard.folder(plan.run_id)
        folder.mkdir(exist_ok=True)  # a run that wrote nothing still leaves batch-child.json
        (folder / CHILD_JSON).write_text(json.dumps(asdict(out), indent=2) + "\n")
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHILD_JSON
                       and p.relative_to(folder).as_posix() != MARKER)
        files += [folder / CHILD_JSON] + ([folder / MARKER] if (folder / MARKER).is_file()
                                          else [])
        try:
            out.uploaded = put_folder(s3, plan.s3, folder, f"{plan.run_id}/{shard.label}", files)
        except ReproError as exc:
            print(f"repro batch child: upload failed: {exc}", file=sys.stderr, flush=True)
            out.exit = EXIT_UPLOAD
    print(f"repro batch child: shard {shard.index}/{shard.of}: run {ended} "
          f"(exit {run_exit}) in {out.seconds:.0f} s; {out.uploaded} file(s) to {where}; "
          f"exit {out.exit}", flush=True)
    return out


def _run(cmd: Sequence[str], timeout_s: float | None, env: Mapping[str, str], say: str
         ) -> tuple[int | None, str]:
    """(exit status or None, how it ended): the run in its own process group; `say` is
    printed once SIGTERM is handled (from then on a stop is orderly)."""
    proc: subprocess.Popen[bytes] | None = None
    with _sigterm_raises():
        print(say, flush=True)
        try:
            proc = subprocess.Popen(list(cmd), start_new_session=True, env=dict(env))
            return proc.wait(timeout=timeout_s), "finished"
        except OSError as exc:
            raise ConfigError(f"cannot start {cmd[0]!r} ({RUN_COMMAND_VAR} or repro run): "
                              f"{exc}") from exc
        except subprocess.TimeoutExpired:
            _stop(proc)
            return None, f"timed out after {timeout_s:.0f} s"
        except _Stopped:
            _stop(proc)
            return None, "stopped by SIGTERM"


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to the run's group (its report gets written), SIGKILL after GRACE_S."""
    if proc is None:  # stopped before the run started
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(_Stopped):
        try:
            proc.wait(timeout=GRACE_S)
            return
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired, _Stopped):
        proc.wait(timeout=KILL_WAIT_S)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped()
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
