"""One result per (incident, configuration) run, and the run's collection of them.

Model: a scenario returns an IncidentResult: which configuration ran, what
verdict it got, what verdict was expected (pass for the configuration under
test, fail for a pre-fix fixture), the figures the checker measured and the
artefacts it left (history, captures, console logs). `as_expected` is what
the report and the pytest assertion both read; what pytest made of the test
that recorded it (and of tests that recorded nothing) is repro.harness.report.record.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from repro.harness.checks import Outcome, Verdict


@dataclass
class IncidentResult:
    incident: str
    label: str              # "under test", "prefix fixture", ...
    configuration: str      # the file or value that was under test
    provider: str
    verdict: Verdict
    expected: Outcome
    duration_s: float
    artefacts: dict[str, str] = field(default_factory=dict)  # name -> file
    target: str = ""
    superseded: bool = False  # an inconclusive attempt that was run again
    test: str = ""  # pytest node id of the test that recorded it (repro.harness.report.record)
    notes: list[str] = field(default_factory=list)  # for a person: what could not be drawn...
    provenance: dict[str, Any] = field(default_factory=dict)  # repro.harness.provenance

    @property
    def figures(self) -> dict[str, Any]:
        """The checker's figures (stored once, in the verdict)."""
        return self.verdict.figures

    @property
    def as_expected(self) -> bool:
        return self.verdict.outcome is self.expected

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = {"outcome": self.verdict.outcome.value,
                        "reasons": list(self.verdict.reasons), "figures": self.verdict.figures}
        d["figures"] = self.verdict.figures  # kept at the top level for readers of the JSON
        d["expected"] = self.expected.value
        d["as_expected"] = self.as_expected
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> IncidentResult:
        v = d["verdict"]
        return IncidentResult(
            incident=d["incident"], label=d["label"], configuration=d["configuration"],
            provider=d["provider"],
            verdict=Verdict(Outcome(v["outcome"]), tuple(v["reasons"]),
                            v["figures"] or d.get("figures", {})),
            expected=Outcome(d["expected"]), duration_s=d["duration_s"],
            artefacts=d["artefacts"], target=d.get("target", ""),
            superseded=d.get("superseded", False), test=d.get("test", ""),
            notes=list(d.get("notes", [])), provenance=dict(d.get("provenance") or {}))


def write_json(results: list[IncidentResult], path: Path, run_id: str) -> None:
    path.write_text(json.dumps({"run_id": run_id, "results": [r.to_dict() for r in results]},
                               indent=2, default=str) + "\n")


def read_json(path: Path) -> tuple[str, list[IncidentResult]]:
    raw = json.loads(path.read_text())
    return raw["run_id"], [IncidentResult.from_dict(d) for d in raw["results"]]
