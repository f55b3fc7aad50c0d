"""A stand-in for `repro run --shard I/N --run-id RUNID --reports DIR [...]` (tests only).

It writes the shard folder of the shard contract with the harness's own writers
(results.json, summary.md, junit.xml, shard.json): one reproduction `standin` per shard,
whose result is as expected unless the shard is listed in STANDIN_FAIL, and exits as
`repro run` would (0, or 1 for a result not as expected). It also writes argv.json (what
it was given), so a test sees the run arguments that reached it.

  STANDIN_FAIL=2,3        shards whose result is not as expected (exit 1)
  STANDIN_NO_REPORT=2     shards that write nothing and exit 2 (bad input, say)
  STANDIN_SLEEP_S=30      seconds to sleep first (a slow run); SIGTERM ends it
  STANDIN_HANG=2          shards that sleep 600 s first (a hung run)

Used as REPRO_BATCH_RUN_COMMAND by tests/test_batch.py (directly, and inside moto's
Batch containers) and to make shard folders for tests/test_workflows.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from repro.harness import shards
from repro.harness.checks import Outcome, Verdict
from repro.harness.report import summary
from repro.harness.report.record import FAILED, PASSED, RunReport, TestRecord, write_report_json
from repro.harness.report.results import IncidentResult


def _listed(var: str, index: int) -> bool:
    return str(index) in os.environ.get(var, "").replace(" ", "").split(",")


def write_shard(reports: Path, run_id: str, shard: shards.Shard, ok: bool,
                argv: list[str] | None = None) -> Path:
    """A shard's report folder, as `repro run --shard` writes it; the folder."""
    folder = reports / shard.folder(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    nodeid = f"repro/standin/test_standin.py::test_shard_{shard.index}"
    result = IncidentResult(
        "standin", "under test", "fixtures/default.toml", "docker",
        Verdict(Outcome.PASS if ok else Outcome.FAIL, () if ok else ("stand-in failure",),
                {"shard": shard.index}), Outcome.PASS, 0.5, test=nodeid)
    report = RunReport(shard.physical_id(run_id, "abcd"), [result],
                       [TestRecord(nodeid, "standin", PASSED if ok else FAILED,
                                   "" if ok else "AssertionError: not as expected", 0.5)],
                       exit_status=0 if ok else 1, finished=True)
    write_report_json(report, folder / "results.json")
    summary.write_markdown(report, folder / "summary.md")
    summary.write_junit(report, folder / "junit.xml")
    (folder / "argv.json").write_text(json.dumps(argv or []) + "\n")
    shards.write_shard_json(folder / "shard.json", run_id, shard, report.run_id, [nodeid],
                            folder)
    return folder


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--shard", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--reports", type=Path, required=True)
    args, _ = p.parse_known_args(argv)
    shard = shards.Shard.parse(args.shard)
    time.sleep(600.0 if _listed("STANDIN_HANG", shard.index)
               else float(os.environ.get("STANDIN_SLEEP_S", "0")))   # a slow or hung run
    if _listed("STANDIN_NO_REPORT", shard.index):
        print(f"standin: shard {shard.index}: bad input, no report", file=sys.stderr)
        return 2
    ok = not _listed("STANDIN_FAIL", shard.index)
    write_shard(args.reports, args.run_id, shard, ok, argv)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
