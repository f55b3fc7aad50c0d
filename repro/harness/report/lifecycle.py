"""Runs that did not finish: found and marked *abandoned*, so no report of one looks green.

Model: a session writes its report when its Run starts (finished false, junit.xml with
an error case "run did not finish") and rewrites it as it goes; only its end writes
finished true. A run SIGKILLed or OOM-killed never gets there. Its results.json names
its owner (pid and the pid's start time, so a reused pid is not the run): once that
process is gone, the next `repro` command or pytest session that starts a Run marks
the report abandoned (results.json, summary.md, junit.xml rewritten: red, "run did not
finish") and removes `reports/in-progress` if it pointed there. A report from before
owners were recorded is judged by its scratch dir's owner.pid (repro.harness.cleanup).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from repro.harness import cleanup
from repro.harness.procs import pid_alive, start_ticks
from repro.harness.report import summary
from repro.harness.report.record import RunReport, read_report, write_report_json
from repro.harness.run import IN_PROGRESS, clear_link


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the process an owner record names still runs (the same process)."""
    try:
        pid = int(owner["pid"])
    except (KeyError, TypeError, ValueError):
        return False
    ticks = owner.get("start_ticks")
    return pid_alive(pid) and (ticks is None or start_ticks(pid) == ticks)


def abandoned(report: RunReport, live_run_ids: set[str]) -> bool:
    """An unfinished report whose owner is gone (without an owner: whose run is not live)."""
    if report.finished or report.abandoned:
        return False
    if report.owner:
        return not owner_alive(report.owner)
    return report.run_id not in live_run_ids


def _unfinished(folder: Path) -> RunReport | None:
    """The folder's report if it says it has not finished (None: finished, or unreadable)."""
    path = folder / "results.json"
    if folder.is_symlink() or not path.is_file():
        return None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if json.loads(path.read_text()).get("session", {}).get("finished", True) is False:
            return read_report(path)
    return None


def mark(folder: Path, report: RunReport) -> None:
    report.abandoned = True
    write_report_json(report, folder / "results.json")
    summary.write_markdown(report, folder / "summary.md")
    summary.write_junit(report, folder / "junit.xml")


def mark_abandoned(reports_root: Path) -> list[Path]:
    """Mark every abandoned run under reports_root; the folders marked."""
    if not reports_root.is_dir():
        return []
    unfinished = [(f, r) for f in sorted(reports_root.iterdir())
                  if (r := _unfinished(f)) is not None]
    if not unfinished:
        return []
    live = set(cleanup.live_runs().values())
    marked = []
    for folder, report in unfinished:
        if abandoned(report, live):
            with contextlib.suppress(OSError):
                mark(folder, report)
                clear_link(reports_root, IN_PROGRESS, folder.name)
                marked.append(folder)
    return marked
