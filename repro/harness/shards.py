"""Shards: the unit of distribution of one logical run over many machines.

Model: a logical run has a run id (`--repro-run-id`, e.g. a CI's run number) and is cut
into N shards (`--repro-shard I/N`). What a shard runs is a pure function of what was
collected, N and a durations table, so that every machine, given the same checkout and
the same table, picks the same share and no test runs twice or never:

  units      the collected tests grouped so that what shares state stays together: every
             test of one incident (both directions, its backend variants: one module
             fixture, one host set) is one unit; any other test is a unit of its module
  durations  seconds per unit: the table given (`repro merge` writes one learnt from a
             run: `durations.json`), else the shipped one (fixtures/durations.json), else
             DEFAULT_INCIDENT_S for an incident and DEFAULT_MODULE_S for a module
  assign     longest first, each unit to the least-loaded shard (ties: the lower index):
             deterministic, within 4/3 of the best balance

A shard's hosts carry its physical run id `RUNID-shardIofN-<4 hex>` (unique per process,
so two shards on one machine never share a name or a scratch dir); its report folder is
`<reports>/RUNID.shard-I-of-N/` with a `shard.json` saying which shard of which run it
is and what it ran. `repro merge` joins them (repro.harness.report.merge).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro.harness.errors import ConfigError

if TYPE_CHECKING:
    import pytest

    from repro.harness.plugin import Session

SHIPPED = Path(__file__).resolve().parents[1] / "fixtures" / "durations.json"
DEFAULT_INCIDENT_S = 120.0
DEFAULT_MODULE_S = 10.0
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._]{0,63}")


@dataclass(frozen=True)
class Shard:
    index: int   # 1-based
    of: int

    @staticmethod
    def parse(text: str) -> Shard:
        m = re.fullmatch(r"(\d+)/(\d+)", text.strip())
        if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
            raise ValueError(f"a shard is I/N with 1 <= I <= N, got {text!r}")
        return Shard(int(m.group(1)), int(m.group(2)))

    @property
    def label(self) -> str:
        return f"shard-{self.index}-of-{self.of}"

    def folder(self, run_id: str) -> str:
        return f"{run_id}.{self.label}"

    def physical_id(self, run_id: str, tail: str) -> str:
        return f"{run_id}-shard{self.index}of{self.of}-{tail}"


def check_run_id(text: str) -> str:
    if not RUN_ID.fullmatch(text):
        raise ValueError(f"a run id is letters, digits, '.' and '_' (at most 64), got {text!r}")
    return text


def read_durations(path: Path | None) -> dict[str, float]:
    """The durations table (unit -> seconds); {} when there is none."""
    if path is None or not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    return {str(k): float(v) for k, v in raw.items()}


def unit_of(nodeid: str, incident: str | None) -> str:
    return incident or nodeid.split("::", 1)[0]


def assign(units: Mapping[str, float], n: int) -> dict[str, int]:
    """unit -> shard index (1-based), longest first onto the least-loaded shard."""
    load = [0.0] * n
    out = {}
    for unit, seconds in sorted(units.items(), key=lambda kv: (-kv[1], kv[0])):
        i = min(range(n), key=lambda k: (load[k], k))
        out[unit] = i + 1
        load[i] += seconds
    return out


def share(tests: Iterable[tuple[str, str | None]], shard: Shard,
          durations: Mapping[str, float]) -> set[str]:
    """The node ids (of (node id, incident or None)) that `shard` runs."""
    tests = list(tests)
    units: dict[str, float] = {}
    for nodeid, incident in tests:
        unit = unit_of(nodeid, incident)
        units[unit] = durations.get(unit, DEFAULT_INCIDENT_S if incident else DEFAULT_MODULE_S)
    where = assign(units, shard.of)
    return {nodeid for nodeid, incident in tests
            if where[unit_of(nodeid, incident)] == shard.index}


def learnt(durations_by_test: Iterable[tuple[str, str | None, float]]) -> dict[str, float]:
    """A durations table from a run: seconds per unit, summed over its tests."""
    out: dict[str, float] = {}
    for nodeid, incident, seconds in durations_by_test:
        unit = unit_of(nodeid, incident)
        out[unit] = round(out.get(unit, 0.0) + seconds, 1)
    return dict(sorted(out.items()))


def configure(session: Session, config: pytest.Config) -> None:
    """--repro-run-id, --repro-shard, --repro-durations into the session (ConfigError: one
    line for bad input)."""
    run_id, shard = config.getoption("--repro-run-id"), config.getoption("--repro-shard")
    try:
        if run_id:
            session.logical_id = check_run_id(run_id)
        if shard:
            if not run_id:
                raise ValueError("--repro-shard needs --repro-run-id (every shard of one run "
                                 "shares it)")
            session.shard = Shard.parse(shard)
        given = config.getoption("--repro-durations")
        if given and not Path(given).is_file():
            raise ValueError(f"--repro-durations: no file {given}")
        session.settings.durations = read_durations(Path(given) if given else SHIPPED)
    except (ValueError, OSError) as exc:
        raise ConfigError(str(exc)) from exc


def write_shard_json(path: Path, run_id: str, shard: Shard, physical: str,
                     nodeids: list[str], folder: Path) -> None:
    doc: dict[str, Any] = {"run_id": run_id, "shard": shard.index, "of": shard.of,
                           "physical_run_id": physical, "folder": str(folder.resolve()),
                           "nodeids": nodeids}
    path.write_text(json.dumps(doc, indent=2) + "\n")
