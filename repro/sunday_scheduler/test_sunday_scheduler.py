"""sunday_scheduler: both directions on Docker hosts with libfaketime clocks.

- the configuration under test (default fixtures/sunday_scheduler/fixed.sh) must keep
  every server's heartbeat through the seven midnights of a week and every instant
  Hypothesis tries;
- the pre-fix fixture (prefix.sh: 0- vs 1-based weekdays) must be flagged at the
  midnight into Sunday, only ever on a Sunday, and Hypothesis must have shrunk the instant
  it found to a Saturday night.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from repro.harness.directions import both_directions
from repro.harness.report.results import IncidentResult
from repro.sunday_scheduler import scenario


def _minimal(result: IncidentResult) -> dict[str, Any] | None:
    for line in Path(result.artefacts["history"]).read_text().splitlines():
        e = json.loads(line)
        if e["kind"] == "op" and e.get("name") == "minimal":
            return e
    return None


def every_midnight_held(result: IncidentResult, cfg: Any) -> None:
    assert result.verdict.figures["windows"] >= 7
    assert result.verdict.figures["misfires"] == 0


def evicted_on_sunday_only(result: IncidentResult, cfg: Any) -> None:
    evictions = [r for r in result.verdict.reasons if r.startswith("evicted")]
    # on Sunday only (the windows of the midnights into and out of Sunday hold Sunday
    # time), and at the midnight into Sunday within ttl
    assert evictions and all(" at Sun " in r for r in evictions), result.verdict.reasons
    assert any(" at Sun 00:0" in r for r in evictions), evictions
    minimal = _minimal(result)
    assert minimal is not None, "Hypothesis found no failing instant"
    assert date.fromisoformat(minimal["day"]).weekday() == 6, minimal  # a Sunday's midnight


test_configuration_under_test, test_prefix_fixture_is_flagged = both_directions(
    "sunday_scheduler", scenario.run, under_test_check=every_midnight_held,
    prefix_check=evicted_on_sunday_only)
