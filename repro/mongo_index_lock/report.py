"""The incident's own page: one table a person reads next to the timeline.

Model: from the verdict's figures only (the checker's numbers, nothing
recomputed): latency p50 / p99 / max overall and per kind of operation, the
longest stall, lock waits (pg_locks) or tickets (serverStatus), and the
instances asked / started / ok; then the verdict's reasons.
"""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from repro.harness.checks import Verdict


def _get(figures: dict[str, object], key: str) -> object:
    return figures.get(key, "")


def write_summary(path: Path, title: str, target: str, verdict: Verdict,
                  timeline: str) -> Path:
    f = verdict.figures
    latency = [["all", _get(f, "p50_ms"), _get(f, "p99_ms"), _get(f, "max_ms")],
               ["write", "", _get(f, "write_p99_ms"), _get(f, "write_max_ms")],
               ["read", "", _get(f, "read_p99_ms"), _get(f, "read_max_ms")],
               ["before the storm", "", _get(f, "baseline_p99_ms"), ""]]
    database = [[k.replace("_", " "), f[k]] for k in (
        "longest_stall_ms", "stall_kind", "max_lock_waiters", "max_create_index_waiters",
        "longest_lock_wait_ms", "min_read_tickets", "min_write_tickets", "lock_acquire_ms",
        "instances_asked", "instances_started", "instances_ok", "instance_p50_s",
        "instance_max_s", "ops_during_storm", "ops_failed", "harness_freezes") if k in f]
    lines = [f"# {title}", "", f"- target: {target}",
             f"- verdict: **{verdict.outcome.value.upper()}**"]
    lines += [f"  - {r}" for r in verdict.reasons]
    lines += ["", "Latency during and after the storm (ms, from each operation's scheduled "
              "time):", "", tabulate(latency, headers=["operations", "p50", "p99", "max"],
                                     tablefmt="github"),
              "", tabulate(database, headers=["figure", "value"], tablefmt="github"),
              "", f"![timeline]({timeline})", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
