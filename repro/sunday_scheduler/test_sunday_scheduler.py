"""sunday_scheduler: both directions on Docker hosts with libfaketime clocks.

- the configuration under test (default fixtures/sunday_scheduler/fixed.sh) must keep
  every server's heartbeat through the seven midnights of a week and every instant
  Hypothesis tries;
- the pre-fix fixture (prefix.sh: 0- vs 1-based weekdays) must be flagged on the
  evidence: a live server evicted on Sunday's clock in a window of the week (the one
  into Sunday, or the Monday one, which starts on Sunday night), the checker's
  `evicted_live`: the harness's ticks on it went on after the eviction, and they are in
  the history; and every eviction of the week on Sunday's clock. Where
  Hypothesis shrank its failing instant to is a figure (`shrunk_instant`), not a
  condition: its shrink can end in a Monday whose window started a few minutes early.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from repro.harness.directions import both_directions
from repro.harness.report.results import IncidentResult
from repro.sunday_scheduler import scenario


def _ticks(result: IncidentResult, server: str, phase: str) -> list[float]:
    """The harness's ticks on `server` in its `phase` window, as the history holds them."""
    for line in Path(result.artefacts["history"]).read_text().splitlines():
        e = json.loads(line)
        if e["kind"] == "op" and e.get("name") == "window" and e["host"] == server \
                and e.get("phase") == phase:
            return [float(t) for t in e.get("ticks") or []]
    return []


def every_midnight_held(result: IncidentResult, cfg: Any) -> None:
    assert result.verdict.figures["windows"] >= 7
    assert result.verdict.figures["misfires"] == 0


def a_live_server_evicted_on_sunday(result: IncidentResult, cfg: Any) -> None:
    week = [m for m in result.verdict.figures["evicted_live"] if m["phase"] == "week"]
    # on Sunday's clock: in the window into Sunday, or the Monday window, which starts on
    # Sunday night (either is the evidence; a loaded host can stall one into inconclusive)
    sunday = [m for m in week if m["evicted_local"].startswith("Sun ")]
    assert sunday, f"no live server evicted on Sunday's clock in the week: {week}"
    m = sunday[0]
    alive = [t for t in _ticks(result, m["server"], "week") if t > m["evicted_at"]]
    assert len(alive) == m["ticks_after"] > 0, (m, alive)   # its heartbeats, in the history
    assert any(r.startswith(f"a live server evicted: {m['server']} at {m['evicted_local']}")
               for r in result.verdict.reasons), result.verdict.reasons
    # the bug's shape: a 0- vs 1-based weekday loses Sunday, only Sunday, by the host's clock
    assert all(x["evicted_local"].startswith("Sun ") for x in week), week


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "sunday_scheduler", scenario.run, under_test_check=every_midnight_held,
    prefix_check=a_live_server_evicted_on_sunday)
