"""Where a suite run's time went: per incident and direction, wall time, observation, overhead.

  .venv/bin/python -m benchmarks.bench_suite [RUN_DIR]     (default: reports/latest)

Reads a finished run's results.json (merged shard runs too) and each result's
history.jsonl. Per reproduction (one pytest test: an incident in one direction):

  wall       pytest's time for the test, set-up and tear-down included (module
             fixtures such as hosts shared by both directions land on the test that
             created them); the result's own duration when no test record exists
  observed   the observation span: first to last observing event of the history
             (every kind but the life-cycle and commentary kinds in NOT_OBSERVING:
             probes, ops, marks, phases, fault windows, streams, samples...), summed
             over the test's attempts (an inconclusive attempt that was run again)
  overhead   wall - observed, as a fraction of wall: the harness's own time
             (provisioning, configuration, waits, checking, reports, tear-down)

Totals per direction and for the run follow; the target is an overhead under
TARGET_OVERHEAD of the total wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from repro.harness.report.record import read_report
from repro.harness.report.results import IncidentResult

NOT_OBSERVING = frozenset({"host", "note"})  # life cycle (agent started, ready...), remarks
TARGET_OVERHEAD = 0.20


@dataclass(frozen=True)
class Span:
    first: float
    last: float

    @property
    def length(self) -> float:
        return max(0.0, self.last - self.first)


@dataclass(frozen=True)
class Row:
    incident: str
    direction: str      # the result's label: "under test", "prefix fixture", ...
    outcome: str        # the verdict (the last attempt's)
    attempts: int
    wall_s: float
    observed_s: float | None  # None: no history could be read

    @property
    def beside(self) -> bool:
        """Run side by side with another direction (slowclone): its wall time is that one's."""
        # its test took no time of its own: the observation happened in the other's
        return self.observed_s is not None and self.observed_s > self.wall_s + 1.0

    @property
    def overhead_s(self) -> float | None:
        if self.observed_s is None or self.beside:
            return None
        return max(0.0, self.wall_s - self.observed_s)

    @property
    def overhead(self) -> float | None:
        if self.overhead_s is None or self.wall_s <= 0:
            return None
        return self.overhead_s / self.wall_s


def observation_span(lines: Iterable[str]) -> Span | None:
    """First to last observing event of a history's JSON lines (None: no such event)."""
    first = last = None
    for line in lines:
        try:
            raw = json.loads(line)
            t, kind = float(raw["t"]), str(raw["kind"])
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line of a killed run
        if kind in NOT_OBSERVING:
            continue
        first = t if first is None else min(first, t)
        last = t if last is None else max(last, t)
    return None if first is None or last is None else Span(first, last)


def history_file(run_dir: Path, result: IncidentResult) -> Path | None:
    """The result's history: where results.json says, or at the same place relative to the
    run folder (a run folder that was moved or merged from shards)."""
    named = result.artefacts.get("history")
    if not named:
        return None
    path = Path(named)
    if path.is_file():
        return path
    tail = Path(*path.parts[-3:])  # <incident>/<label slug>/history.jsonl
    for candidate in [run_dir / tail, *sorted(run_dir.rglob(str(tail)))]:
        if candidate.is_file():
            return candidate
    return None


def span_of(run_dir: Path, result: IncidentResult) -> float | None:
    path = history_file(run_dir, result)
    if path is None:
        return None
    with path.open(encoding="utf-8", errors="replace") as f:
        span = observation_span(f)
    return span.length if span else 0.0


def rows(run_dir: Path) -> list[Row]:
    report = read_report(run_dir / "results.json")
    walls = {t.nodeid: t.duration_s for t in report.tests}
    by_test: dict[str, list[IncidentResult]] = defaultdict(list)
    for r in report.results:
        key = r.test if r.test in walls else f"result:{id(r)}"
        by_test[key].append(r)
    out = []
    for key, results in by_test.items():
        spans = [span_of(run_dir, r) for r in results]
        wall = walls.get(key, sum(r.duration_s for r in results))
        observed = None if any(s is None for s in spans) else sum(s or 0.0 for s in spans)
        last = results[-1]
        out.append(Row(last.incident, last.label, last.verdict.outcome.value, len(results),
                       float(wall), observed))
    return sorted(out, key=lambda r: (r.incident, r.direction))


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f} %"


def _s(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def total(name: str, rs: list[Row]) -> list[object]:
    wall = sum(r.wall_s for r in rs)
    known = [r for r in rs if r.observed_s is not None and not r.beside]
    observed = sum(r.observed_s or 0.0 for r in known)
    known_wall = sum(r.wall_s for r in known)
    share = (known_wall - observed) / known_wall if known_wall > 0 else None
    return [name, "", "", sum(r.attempts for r in rs), _s(wall), _s(observed),
            _s(known_wall - observed), _pct(share)]


def table(rs: list[Row]) -> str:
    body: list[list[object]] = [
        [r.incident, r.direction, r.outcome, r.attempts, _s(r.wall_s), _s(r.observed_s),
         _s(r.overhead_s), _pct(r.overhead)] for r in rs]
    directions = sorted({r.direction for r in rs})
    body += [total(f"total, {d}", [r for r in rs if r.direction == d]) for d in directions]
    body.append(total("total", rs))
    return tabulate(body, headers=["incident", "direction", "verdict", "attempts", "wall s",
                                   "observed s", "overhead s", "overhead"],
                    tablefmt="github", disable_numparse=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("run_dir", nargs="?", type=Path, default=Path("reports/latest"))
    args = ap.parse_args(argv)
    run_dir = args.run_dir.resolve()
    if not (run_dir / "results.json").is_file():
        print(f"no results.json in {run_dir}: give a run's report folder", file=sys.stderr)
        return 2
    rs = rows(run_dir)
    print(f"run {run_dir.name}: {len(rs)} reproductions")
    print(table(rs))
    known = [r for r in rs if r.observed_s is not None and not r.beside]
    wall = sum(r.wall_s for r in known)
    if wall > 0:
        share = (wall - sum(r.observed_s or 0.0 for r in known)) / wall
        verdict = "within" if share < TARGET_OVERHEAD else "over"
        print(f"harness overhead {100 * share:.0f} % of the wall time: {verdict} the "
              f"{100 * TARGET_OVERHEAD:.0f} % target")
    missing = [f"{r.incident} ({r.direction})" for r in rs if r.observed_s is None]
    if missing:
        print("no history read for: " + ", ".join(missing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
